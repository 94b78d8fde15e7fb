package kubelet

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/alecthomas/kingpin/v2"
	"github.com/google/go-cmp/cmp"
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

func TestSecurityCheckStates(t *testing.T) {
	t.Parallel()
	timeout := errors.New("read-only port check: GET http://10.0.0.1:10255/healthz: the kubelet did not answer in time")
	for _, tc := range []struct {
		name           string
		stub           *stubKubelet
		wantRO, wantAn string
		wantLog        []string
	}{
		{
			name: "secure kubelet", stub: &stubKubelet{},
			wantRO: `# HELP nodeagent_kubelet_readonly_port_last_check_timestamp_seconds nodeagent: when the read-only port check last ran (it runs at start and then every --kubelet.security-check-interval).
# TYPE nodeagent_kubelet_readonly_port_last_check_timestamp_seconds gauge
nodeagent_kubelet_readonly_port_last_check_timestamp_seconds 1.8e+09
# HELP nodeagent_kubelet_readonly_port_open nodeagent: whether the kubelet's unauthenticated read-only port serves pod specs (1) or refuses connections (0); absent while the check cannot tell (see nodeagent_kubelet_readonly_port_state).
# TYPE nodeagent_kubelet_readonly_port_open gauge
nodeagent_kubelet_readonly_port_open 0
# HELP nodeagent_kubelet_readonly_port_state nodeagent: the read-only port check's outcome: open, closed, or unknown (no answer in time, or an answer that is not a kubelet's); 1 for the current state.
# TYPE nodeagent_kubelet_readonly_port_state gauge
nodeagent_kubelet_readonly_port_state{state="closed"} 1
nodeagent_kubelet_readonly_port_state{state="open"} 0
nodeagent_kubelet_readonly_port_state{state="unknown"} 0
`,
			wantAn: `# HELP nodeagent_kubelet_anonymous_auth_enabled nodeagent: whether the kubelet's authenticated port accepts requests without credentials (1) or refuses them with 401 (0); absent while the check cannot tell (see nodeagent_kubelet_anonymous_auth_state).
# TYPE nodeagent_kubelet_anonymous_auth_enabled gauge
nodeagent_kubelet_anonymous_auth_enabled 0
# HELP nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds nodeagent: when the anonymous-auth check last ran (it runs at start and then every --kubelet.security-check-interval).
# TYPE nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds gauge
nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds 1.8e+09
# HELP nodeagent_kubelet_anonymous_auth_state nodeagent: the anonymous-auth check's outcome: enabled, disabled, or unknown (unreachable, TLS failure, timeout); 1 for the current state.
# TYPE nodeagent_kubelet_anonymous_auth_state gauge
nodeagent_kubelet_anonymous_auth_state{state="disabled"} 1
nodeagent_kubelet_anonymous_auth_state{state="enabled"} 0
nodeagent_kubelet_anonymous_auth_state{state="unknown"} 0
`,
			wantLog: []string{`level=INFO msg="the kubelet's read-only port is closed"`, `level=INFO msg="the kubelet refuses anonymous requests (401)"`},
		},
		{
			name: "insecure kubelet", stub: &stubKubelet{readOnly: true, anon: true},
			wantRO: `# HELP nodeagent_kubelet_readonly_port_last_check_timestamp_seconds nodeagent: when the read-only port check last ran (it runs at start and then every --kubelet.security-check-interval).
# TYPE nodeagent_kubelet_readonly_port_last_check_timestamp_seconds gauge
nodeagent_kubelet_readonly_port_last_check_timestamp_seconds 1.8e+09
# HELP nodeagent_kubelet_readonly_port_open nodeagent: whether the kubelet's unauthenticated read-only port serves pod specs (1) or refuses connections (0); absent while the check cannot tell (see nodeagent_kubelet_readonly_port_state).
# TYPE nodeagent_kubelet_readonly_port_open gauge
nodeagent_kubelet_readonly_port_open 1
# HELP nodeagent_kubelet_readonly_port_state nodeagent: the read-only port check's outcome: open, closed, or unknown (no answer in time, or an answer that is not a kubelet's); 1 for the current state.
# TYPE nodeagent_kubelet_readonly_port_state gauge
nodeagent_kubelet_readonly_port_state{state="closed"} 0
nodeagent_kubelet_readonly_port_state{state="open"} 1
nodeagent_kubelet_readonly_port_state{state="unknown"} 0
`,
			wantAn: `# HELP nodeagent_kubelet_anonymous_auth_enabled nodeagent: whether the kubelet's authenticated port accepts requests without credentials (1) or refuses them with 401 (0); absent while the check cannot tell (see nodeagent_kubelet_anonymous_auth_state).
# TYPE nodeagent_kubelet_anonymous_auth_enabled gauge
nodeagent_kubelet_anonymous_auth_enabled 1
# HELP nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds nodeagent: when the anonymous-auth check last ran (it runs at start and then every --kubelet.security-check-interval).
# TYPE nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds gauge
nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds 1.8e+09
# HELP nodeagent_kubelet_anonymous_auth_state nodeagent: the anonymous-auth check's outcome: enabled, disabled, or unknown (unreachable, TLS failure, timeout); 1 for the current state.
# TYPE nodeagent_kubelet_anonymous_auth_state gauge
nodeagent_kubelet_anonymous_auth_state{state="disabled"} 0
nodeagent_kubelet_anonymous_auth_state{state="enabled"} 1
nodeagent_kubelet_anonymous_auth_state{state="unknown"} 0
`,
			wantLog: []string{"level=WARN", "set readOnlyPort: 0 in the kubelet configuration", "set authentication.anonymous.enabled: false in the kubelet configuration"},
		},
		{
			name: "cannot tell", stub: &stubKubelet{readOnlyErr: timeout, anonErr: errors.New("anonymous-auth check: TLS with the kubelet failed")},
			wantRO: `# HELP nodeagent_kubelet_readonly_port_last_check_timestamp_seconds nodeagent: when the read-only port check last ran (it runs at start and then every --kubelet.security-check-interval).
# TYPE nodeagent_kubelet_readonly_port_last_check_timestamp_seconds gauge
nodeagent_kubelet_readonly_port_last_check_timestamp_seconds 1.8e+09
# HELP nodeagent_kubelet_readonly_port_state nodeagent: the read-only port check's outcome: open, closed, or unknown (no answer in time, or an answer that is not a kubelet's); 1 for the current state.
# TYPE nodeagent_kubelet_readonly_port_state gauge
nodeagent_kubelet_readonly_port_state{state="closed"} 0
nodeagent_kubelet_readonly_port_state{state="open"} 0
nodeagent_kubelet_readonly_port_state{state="unknown"} 1
`,
			wantAn: `# HELP nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds nodeagent: when the anonymous-auth check last ran (it runs at start and then every --kubelet.security-check-interval).
# TYPE nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds gauge
nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds 1.8e+09
# HELP nodeagent_kubelet_anonymous_auth_state nodeagent: the anonymous-auth check's outcome: enabled, disabled, or unknown (unreachable, TLS failure, timeout); 1 for the current state.
# TYPE nodeagent_kubelet_anonymous_auth_state gauge
nodeagent_kubelet_anonymous_auth_state{state="disabled"} 0
nodeagent_kubelet_anonymous_auth_state{state="enabled"} 0
nodeagent_kubelet_anonymous_auth_state{state="unknown"} 1
`,
			wantLog: []string{"cannot tell whether the kubelet's read-only port is open; reported as unknown", "did not answer in time", "cannot tell whether the kubelet accepts anonymous requests"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stub := tc.stub
			stub.interval = 5 * time.Minute
			ro, anon, _, logs := securityEnv(t, stub)
			for c, want := range map[collectors.Collector]string{ro: tc.wantRO, anon: tc.wantAn} {
				got, err := collectortest.Exposition(t, c)
				if err != nil {
					t.Fatalf("Update: %v", err)
				}
				if diff := cmp.Diff(want, string(got)); diff != "" {
					t.Errorf("exposition (-want +got):\n%s", diff)
				}
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
