package kubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/promfetch"
)

// buildSource builds the named source collector through its registration
// and flags, as the binary does, with env's registry and no kubelet unless
// given; it returns what the factory returned.
func buildSource(t testing.TB, name string, env collectors.Env, args ...string) (collectors.Collector, error) {
	t.Helper()
	reg := collectortest.Lookup(t, name)
	app := kingpin.New("test", "")
	factory := reg.Setup(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	if env.Logger == nil {
		env.Logger = collectortest.Logger(t)
	}
	return factory(env)
}

func mustBuildSource(t testing.TB, name string, reg prometheus.Registerer, args ...string) collectors.Collector {
	t.Helper()
	c, err := buildSource(t, name, collectors.Env{Registerer: reg}, args...)
	if err != nil || c == nil {
		t.Fatalf("building %s: %v, %v", name, c, err)
	}
	return c
}

// TestSourcesPassThroughUnchanged: kube-proxy's, containerd's and CRI-O's
// real payloads, through the collector and the scraper, come out byte for
// byte as they were served, and pass the exposition lint with only the
// sources' own names excused.
func TestSourcesPassThroughUnchanged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, collector, flag string
		fake                  func(testing.TB) *fakekubelet.Component
		payload               string
	}{
		{"kube-proxy", "kube-proxy", "--kube-proxy.url", fakekubelet.KubeProxy, "kube-proxy-1.21.1_metrics.txt"},
		{"containerd", "runtime", "--runtime.metrics-url", fakekubelet.Containerd, "containerd-1.6.20_metrics.txt"},
		{"CRI-O", "runtime", "--runtime.metrics-url", fakekubelet.CRIO, "crio_metrics.txt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := tc.fake(t)
			c := mustBuildSource(t, tc.collector, prometheus.NewRegistry(), tc.flag+"="+fake.URL)
			s, err := collectors.NewScraper([]collectors.Instance{{Name: tc.collector, Layer: collectors.LayerKubelet, Collector: c, Passthrough: true}},
				collectors.ScraperOptions{Timeout: 10 * time.Second, MaxConcurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			mfs, err := s.Gather(time.Now().Add(10*time.Second), []string{tc.collector})
			if err != nil {
				t.Fatal(err)
			}
			if successOf(mfs, tc.collector) != 1 {
				t.Errorf("nodeagent_scrape_collector_success{collector=%q} is not 1", tc.collector)
			}
			payload := string(fakekubelet.Payload(t, tc.payload))
			if diff := cmp.Diff(payload, withoutScrapeMetrics(t, mfs)); diff != "" {
				t.Errorf("passthrough differs from %s (-served by the source +served by us):\n%s", tc.payload, diff)
			}
			families := len(typeLineRE.FindAllString(payload, -1))
			if families == 0 {
				t.Fatal("the payload has no family")
			}
			var own []*dto.MetricFamily
			for _, mf := range mfs {
				if !strings.HasPrefix(mf.GetName(), "nodeagent_") {
					own = append(own, mf)
				}
			}
			if len(own) != families {
				t.Errorf("%d families passed through, the payload has %d", len(own), families)
			}
			// promlint's duplicate check is quadratic in a family's series
			// (containerd's grpc_server_handled_total has 2,176; minutes
			// under the race detector) and the scraper already guarantees
			// what it checks; the name, type and unit checks need one
			// series per family.
			lintable := make([]*dto.MetricFamily, len(own))
			for i, mf := range own {
				lintable[i] = &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Metric: mf.Metric[:min(1, len(mf.Metric))]}
			}
			strict, err := promlint.NewWithMetricFamilies(lintable).Lint()
			if err != nil {
				t.Fatal(err)
			}
			problems, err := collectors.Lint(lintable, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("promlint: %s: %s", p.Metric, p.Text)
			}
			if len(strict) == 0 {
				t.Error("the payload has no promlint finding any more; review the source's KnownLintProblems")
			}
			t.Logf("%d families, %d bytes passed through unchanged; %d promlint findings excused as the source's own names", len(own), len(payload), len(strict))
		})
	}
}

var typeLineRE = regexp.MustCompile(`(?m)^# TYPE `)

const upHelp = "nodeagent: whether the last request to this source's metrics endpoint succeeded and its answer decoded (1) or not (0); absent for a source not found at its default address."

// TestSourceFailures: given explicitly, a source that is down, hangs, is
// too large, answers garbage or refuses us fails its collector with an
// error of its class naming the URL, and nodeagent_passthrough_up is 0 with
// the error counted by reason.
func TestSourceFailures(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	huge := func(announce bool) func(*fakekubelet.Component) {
		return func(c *fakekubelet.Component) {
			c.Handle(func(w http.ResponseWriter, _ *http.Request) {
				chunk := bytes.Repeat([]byte("kubeproxy_fake_series{n=\"x\"} 1\n"), 1<<15)
				n := (50 << 20) / len(chunk)
				if announce {
					w.Header().Set("Content-Length", fmt.Sprint(n*len(chunk)))
				}
				for range n {
					if _, err := w.Write(chunk); err != nil {
						return // we hung up at the limit
					}
				}
			})
		}
	}
	for _, tc := range []struct {
		name   string
		setup  func(*fakekubelet.Component)
		class  error
		reason string
	}{
		{"down", func(c *fakekubelet.Component) { c.Stop() }, promfetch.ErrUnreachable, "unreachable"},
		{"hangs", func(c *fakekubelet.Component) {
			c.Handle(func(_ http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
		}, promfetch.ErrTimeout, "timeout"},
		{"50 MB announced", huge(true), promfetch.ErrTooLarge, "too_large"},
		{"50 MB streamed", huge(false), promfetch.ErrTooLarge, "too_large"},
		{"garbage after good families", func(c *fakekubelet.Component) {
			c.Handle(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", fakekubelet.TextFormat)
				_, _ = w.Write([]byte("# TYPE kubeproxy_sync_proxy_rules_endpoint_changes_total counter\nkubeproxy_sync_proxy_rules_endpoint_changes_total 85\n\x00\x01{garbage\n"))
			})
		}, promfetch.ErrBadBody, "bad_body"},
		{"HTML", func(c *fakekubelet.Component) {
			c.Handle(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html>login</html>"))
			})
		}, promfetch.ErrBadBody, "bad_body"},
		{"401", func(c *fakekubelet.Component) {
			c.Handle(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "Unauthorized", http.StatusUnauthorized) })
		}, promfetch.ErrUnauthorized, "unauthorized"},
		{"403", func(c *fakekubelet.Component) {
			c.Handle(func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "Forbidden", http.StatusForbidden) })
		}, promfetch.ErrForbidden, "forbidden"},
		{"404 of a given URL", func(c *fakekubelet.Component) {
			c.Handle(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
		}, promfetch.ErrNotFound, "status"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := fakekubelet.KubeProxy(t)
			tc.setup(fake)
			reg := prometheus.NewRegistry()
			c := mustBuildSource(t, "kube-proxy", reg, "--kube-proxy.url="+fake.URL).(*sourcePassthrough)
			// Reading 32 MiB, the default limit, takes a while under the
			// race detector on a loaded machine; the others need no more
			// than the hang's deadline.
			timeout := 500 * time.Millisecond
			if tc.class == promfetch.ErrTooLarge {
				timeout = time.Minute
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			mfs, err := c.UpdateFamilies(ctx)
			if !errors.Is(err, tc.class) || mfs != nil || errors.Is(err, collectors.ErrNoData) {
				t.Fatalf("%d families, error %v; want none and %v", len(mfs), err, tc.class)
			}
			if !strings.Contains(err.Error(), fake.URL) {
				t.Errorf("error %q does not name %s", err, fake.URL)
			}
			want := fmt.Sprintf(`
# HELP nodeagent_passthrough_request_errors_total nodeagent: failed requests to a source's metrics endpoint by source and reason (unreachable, timeout, tls, unauthorized, forbidden, status, too_large, bad_body, canceled).
# TYPE nodeagent_passthrough_request_errors_total counter
nodeagent_passthrough_request_errors_total{reason=%q,source="kube-proxy"} 1
# HELP nodeagent_passthrough_up nodeagent: whether the last request to this source's metrics endpoint succeeded and its answer decoded (1) or not (0); absent for a source not found at its default address.
# TYPE nodeagent_passthrough_up gauge
nodeagent_passthrough_up{source="kube-proxy"} 0
`, tc.reason)
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSourceCandidates: at a default or detected address, nothing
// listening, a 404, or an answer that is not the component's means the
// component is not on this node (ErrNoData, so the path answers 404, and
// no up series); anything else that fails still fails.
func TestSourceCandidates(t *testing.T) {
	t.Parallel()
	closed, err := url.Parse(fmt.Sprintf("http://127.0.0.1:%d/metrics", fakekubelet.ClosedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	prometheusOn9090 := fakekubelet.KubeProxy(t) // any Go program's /metrics: not CRI-O's
	notFound := fakekubelet.CRIO(t)
	notFound.Handle(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	hangs := fakekubelet.CRIO(t)
	hangs.Handle(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	crio := fakekubelet.CRIO(t)
	for _, tc := range []struct {
		name     string
		u        string
		wantNone bool   // ErrNoData: not here
		want     string // in the error
	}{
		{"nothing listens", closed.String(), true, "connection refused"},
		{"404", notFound.URL, true, "HTTP 404"},
		{"another program's metrics", prometheusOn9090.URL, true, "is not CRI-O's metrics"},
		{"hangs", hangs.URL, false, "no complete answer in time"},
		{"CRI-O", crio.URL, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewRegistry()
			m, err := newSourceMetrics(reg)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := url.Parse(tc.u)
			crioKind := runtimeKinds[1]
			c := &sourcePassthrough{
				collector: "runtime", name: crioKind.name, candidate: true, prefixes: crioKind.prefixes, hint: crioKind.hint, metrics: m, logger: collectortest.Logger(t),
				target: promfetch.Target{URL: u, Client: &http.Client{}, MaxBody: 1 << 20, Explainer: promfetch.Generic{Source: "CRI-O"}},
			}
			// Only the source that hangs needs its deadline to come; the
			// others must not miss theirs on a loaded machine (make test
			// runs every package at once, under the race detector).
			timeout := 30 * time.Second
			if tc.name == "hangs" {
				timeout = 300 * time.Millisecond
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			mfs, err := c.UpdateFamilies(ctx)
			switch {
			case tc.want == "":
				if err != nil || len(mfs) == 0 {
					t.Fatalf("%d families, %v; want CRI-O's", len(mfs), err)
				}
			case errors.Is(err, collectors.ErrNoData) != tc.wantNone || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %v; want ErrNoData %v saying %q", err, tc.wantNone, tc.want)
			case tc.wantNone && !strings.Contains(err.Error(), "enable_metrics = true"):
				t.Errorf("error %q does not say how to turn CRI-O's metrics on", err)
			}
			want := ""
			if !tc.wantNone {
				v := map[bool]int{true: 1, false: 0}[tc.want == ""]
				want = fmt.Sprintf("# HELP nodeagent_passthrough_up %s\n# TYPE nodeagent_passthrough_up gauge\nnodeagent_passthrough_up{source=\"runtime\"} %d\n", upHelp, v)
			}
			if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "nodeagent_passthrough_up"); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestSourceFactories: kube-proxy is a candidate at its default address on
// Kubernetes nodes, absent (with the reason) elsewhere unless given; the
// runtime is absent without a URL or a runtime found; settings that
// contradict each other are startup errors naming the flag.
func TestSourceFactories(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	token := fakekubelet.WriteFile(t, dir, "token", []byte("t"))
	nowhere := collectors.Paths{RootFS: dir, CgroupFS: dir}
	for _, tc := range []struct {
		name      string
		collector string
		env       collectors.Env
		args      []string
		candidate bool   // built, as a candidate at this URL
		url       string // built at this URL
		absent    string // ErrNoData saying this
		fails     string // a startup error saying this
	}{
		{name: "kube-proxy on a Kubernetes node", collector: "kube-proxy", env: collectors.Env{Kubelet: &stubKubelet{}}, candidate: true, url: "http://127.0.0.1:10249/metrics"},
		{name: "kube-proxy without a kubelet", collector: "kube-proxy", absent: "the kubelet layer is off here; give --kube-proxy.url"},
		{name: "kube-proxy given", collector: "kube-proxy", args: []string{"--kube-proxy.url=https://10.0.0.1:10249/metrics", "--kube-proxy.token-file=" + token}, url: "https://10.0.0.1:10249/metrics"},
		{name: "kube-proxy given its default", collector: "kube-proxy", args: []string{"--kube-proxy.url=http://127.0.0.1:10249/metrics"}, url: "http://127.0.0.1:10249/metrics"},
		{name: "token over plain HTTP", collector: "kube-proxy", args: []string{"--kube-proxy.url=http://10.0.0.1:10249/metrics", "--kube-proxy.token-file=" + token}, fails: "--kube-proxy.token-file is sent only over https"},
		{name: "missing CA file", collector: "kube-proxy", args: []string{"--kube-proxy.url=https://10.0.0.1/metrics", "--kube-proxy.ca-file=" + dir + "/nope"}, fails: "--kube-proxy.ca-file: stat"},
		{name: "not a URL", collector: "kube-proxy", args: []string{"--kube-proxy.url=127.0.0.1:10249"}, fails: "--kube-proxy.url"},
		{name: "no runtime here", collector: "runtime", env: collectors.Env{Paths: nowhere}, absent: "no container runtime found"},
		{name: "runtime turned off", collector: "runtime", args: []string{"--runtime.metrics-url="}, absent: "turned off"},
		{name: "runtime given", collector: "runtime", env: collectors.Env{Paths: nowhere}, args: []string{"--runtime.metrics-url=http://127.0.0.1:9090/metrics"}, url: "http://127.0.0.1:9090/metrics"},
		{name: "runtime zero body", collector: "runtime", args: []string{"--runtime.metrics-url=http://127.0.0.1:9090/metrics", "--runtime.max-body-size=0"}, fails: "--runtime.max-body-size must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := buildSource(t, tc.collector, tc.env, tc.args...)
			switch {
			case tc.fails != "":
				if err == nil || errors.Is(err, collectors.ErrNoData) || !strings.Contains(err.Error(), tc.fails) {
					t.Fatalf("%v; want a startup error saying %q", err, tc.fails)
				}
			case tc.absent != "":
				if c != nil || !errors.Is(err, collectors.ErrNoData) || !strings.Contains(err.Error(), tc.absent) {
					t.Fatalf("%v, %v; want nothing built, saying %q", c, err, tc.absent)
				}
			default:
				s, ok := c.(*sourcePassthrough)
				if err != nil || !ok {
					t.Fatalf("%v, %v; want a source", c, err)
				}
				if s.target.URL.String() != tc.url || s.candidate != tc.candidate {
					t.Errorf("built at %s (candidate %v), want %s (%v)", s.target.URL, s.candidate, tc.url, tc.candidate)
				}
			}
		})
	}
}

// TestDetectRuntime: a runtime is found from its CRI socket under
// --path.rootfs, or, when the sockets do not tell, from its containers'
// cgroups; never guessed.
func TestDetectRuntime(t *testing.T) {
	t.Parallel()
	touch := func(t *testing.T, root string, paths ...string) {
		for _, p := range paths {
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(p, ".scope") {
				if err := os.Mkdir(filepath.Join(root, p), 0o755); err != nil {
					t.Fatal(err)
				}
				continue
			}
			fakekubelet.WriteFile(t, filepath.Join(root, filepath.Dir(p)), filepath.Base(p), nil)
		}
	}
	const (
		containerdSock = "run/containerd/containerd.sock"
		crioSock       = "run/crio/crio.sock"
		burstable      = "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod07bd11a0.slice/"
		guaranteed     = "kubepods.slice/kubepods-pod5e5613d6.slice/"
	)
	for _, tc := range []struct {
		name           string
		rootfs, cgroup []string
		want           string // the runtime, or in the reason
	}{
		{"containerd's socket", []string{containerdSock}, nil, "containerd"},
		{"CRI-O's socket", []string{crioSock}, nil, "CRI-O"},
		{"both sockets, containerd's cgroups", []string{containerdSock, crioSock}, []string{burstable + "cri-containerd-00a1.scope"}, "containerd"},
		{"both sockets, CRI-O's conmon cgroup", []string{containerdSock, crioSock}, []string{guaranteed + "crio-conmon-0802.scope"}, "CRI-O"},
		{"no socket, CRI-O's cgroups", nil, []string{guaranteed + "crio-0802.scope"}, "CRI-O"},
		{"both sockets, no cgroups", []string{containerdSock, crioSock}, nil, "both containerd's and CRI-O's sockets"},
		{"cgroupfs driver, no socket", nil, []string{"kubepods/burstable/pod07bd11a0/00a1"}, "no container runtime found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, cg := t.TempDir(), t.TempDir()
			touch(t, root, tc.rootfs...)
			touch(t, cg, tc.cgroup...)
			kind, why := detectRuntime(collectors.Paths{RootFS: root, CgroupFS: cg})
			got := why
			if kind != nil {
				got = kind.name
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("detected %q (%s), want %q", got, why, tc.want)
			}
		})
	}
}
