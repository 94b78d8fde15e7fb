package kubelet

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/internal/testclock"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// stubKubelet answers the security checks as told and counts them.
type stubKubelet struct {
	mu               sync.Mutex
	readOnly, anon   bool
	readOnlyErr      error
	anonErr          error
	readOnlyN, anonN int
	gate             chan struct{} // when set, checks wait for it
	interval         time.Duration
}

func (s *stubKubelet) Metrics(context.Context, string) ([]*dto.MetricFamily, error) {
	return nil, errors.New("not in this test")
}

func (s *stubKubelet) wait(ctx context.Context) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *stubKubelet) ReadOnlyPortOpen(ctx context.Context) (bool, error) {
	if err := s.wait(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readOnlyN++
	return s.readOnly, s.readOnlyErr
}

func (s *stubKubelet) AnonymousAuthEnabled(ctx context.Context) (bool, error) {
	if err := s.wait(ctx); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.anonN++
	return s.anon, s.anonErr
}

func (s *stubKubelet) SecurityCheckInterval() time.Duration { return s.interval }

func (s *stubKubelet) set(f func(*stubKubelet)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func (s *stubKubelet) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readOnlyN, s.anonN
}

// securityEnv builds the two security collectors through their
// registrations over a stub kubelet and a manual clock.
func securityEnv(t *testing.T, k *stubKubelet) (ro, anon collectors.Collector, clk *testclock.Clock, logs *testlog.Buffer) {
	t.Helper()
	clk = testclock.New(time.Unix(1_800_000_000, 0))
	logs = &testlog.Buffer{}
	env := collectors.Env{Kubelet: k, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{ReplaceAttr: dropTime}))}
	built := buildKubeletLayerEnv(t, env, "kubelet_readonly_port", "kubelet_anonymous_auth")
	return built[0].Collector, built[1].Collector, clk, logs
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// TestSecurityCheckStates: the two checks' expositions and log lines for a
// secure kubelet, an insecure one, and one whose state cannot be told. The
// expositions are golden files, testdata/security/<case>-{readonly-port,anonymous-auth}.prom
// (go test -update rewrites them).
func TestSecurityCheckStates(t *testing.T) {
	t.Parallel()
	timeout := errors.New("read-only port check: GET http://10.0.0.1:10255/healthz: the kubelet did not answer in time")
	for _, tc := range []struct {
		name    string
		stub    *stubKubelet
		wantLog []string
	}{
		{
			name: "secure", stub: &stubKubelet{},
			wantLog: []string{`level=INFO msg="the kubelet's read-only port is closed"`, `level=INFO msg="the kubelet refuses anonymous requests (401)"`},
		},
		{
			name: "insecure", stub: &stubKubelet{readOnly: true, anon: true},
			wantLog: []string{"level=WARN", "set readOnlyPort: 0 in the kubelet configuration", "set authentication.anonymous.enabled: false in the kubelet configuration"},
		},
		{
			name: "cannot-tell", stub: &stubKubelet{readOnlyErr: timeout, anonErr: errors.New("anonymous-auth check: TLS with the kubelet failed")},
			wantLog: []string{"cannot tell whether the kubelet's read-only port is open; reported as unknown", "did not answer in time", "cannot tell whether the kubelet accepts anonymous requests"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stub := tc.stub
			stub.interval = 5 * time.Minute
			ro, anon, _, logs := securityEnv(t, stub)
			for check, c := range map[string]collectors.Collector{"readonly-port": ro, "anonymous-auth": anon} {
				collectortest.CompareCollectorGolden(t, c, filepath.Join("testdata", "security", tc.name+"-"+check+".prom"))
			}
			for _, w := range tc.wantLog {
				if !strings.Contains(logs.String(), w) {
					t.Errorf("log lacks %q:\n%s", w, logs)
				}
			}
		})
	}
}

// TestSecurityChecksCachedAndRerun: the first scrape runs both checks; the
// next scrapes serve the cached result; once the interval has passed, a
// scrape serves the cached result and a re-check runs behind it. A change
// of state is logged once.
func TestSecurityChecksCachedAndRerun(t *testing.T) {
	t.Parallel()
	stub := &stubKubelet{interval: 5 * time.Minute}
	ro, anon, clk, logs := securityEnv(t, stub)
	scrape := func() (string, string) {
		t.Helper()
		a, err := collectortest.Exposition(t, ro)
		if err != nil {
			t.Fatal(err)
		}
		b, err := collectortest.Exposition(t, anon)
		if err != nil {
			t.Fatal(err)
		}
		return string(a), string(b)
	}
	for range 5 {
		scrape()
	}
	if r, a := stub.counts(); r != 1 || a != 1 {
		t.Fatalf("checks ran %d and %d times over 5 scrapes within the interval; want once each", r, a)
	}
	stub.set(func(s *stubKubelet) { s.readOnly = true })
	clk.Advance(5 * time.Minute)
	if roOut, _ := scrape(); !strings.Contains(roOut, "nodeagent_kubelet_readonly_port_open 0") {
		t.Error("the due scrape did not serve the cached result at once")
	}
	collectortest.WaitFor(t, func() bool { r, a := stub.counts(); return r == 2 && a == 2 })
	collectortest.WaitFor(t, func() bool {
		roOut, _ := scrape()
		return strings.Contains(roOut, "nodeagent_kubelet_readonly_port_open 1")
	})
	if r, _ := stub.counts(); r != 2 {
		t.Errorf("read-only check ran %d times; want 2", r)
	}
	if n := strings.Count(logs.String(), "read-only port is open"); n != 1 {
		t.Errorf("the open port was logged %d times; want once:\n%s", n, logs)
	}
	if n := strings.Count(logs.String(), "refuses anonymous requests"); n != 1 {
		t.Errorf("the unchanged anonymous state was logged %d times; want once:\n%s", n, logs)
	}
}

// TestSecurityFirstCheckHonoursDeadline: a first check slower than the
// scrape returns at the scrape's deadline; its result is served once it
// arrives, without running the check again.
func TestSecurityFirstCheckHonoursDeadline(t *testing.T) {
	t.Parallel()
	stub := &stubKubelet{interval: 5 * time.Minute, gate: make(chan struct{})}
	ro, _, _, _ := securityEnv(t, stub)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	ch := make(chan prometheus.Metric, 16)
	if err := ro.Update(ctx, ch); err == nil || !strings.Contains(err.Error(), "first read-only port check has not finished") {
		t.Fatalf("Update past the deadline: %v", err)
	}
	close(stub.gate)
	collectortest.WaitFor(t, func() bool { r, _ := stub.counts(); return r == 1 })
	if _, err := collectortest.Exposition(t, ro); err != nil {
		t.Fatal(err)
	}
	if r, _ := stub.counts(); r != 1 {
		t.Errorf("check ran %d times; want once", r)
	}
}

// TestSecurityCollectorsNeedAKubelet: without a kubelet there is nothing to
// check.
func TestSecurityCollectorsNeedAKubelet(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"kubelet_readonly_port", "kubelet_anonymous_auth", "kubelet", "probes", "resource"} {
		c, err := collectortest.Lookup(t, n).Setup(kingpin.New("test", ""))(collectors.Env{})
		if c != nil || err != nil {
			t.Errorf("%s without a kubelet: %v, %v; want nothing built", n, c, err)
		}
	}
}
