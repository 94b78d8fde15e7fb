package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Prometheus checks: does anyone scrape the agent (its own
// nodeagent_last_scrape_timestamp_seconds{path}), and with --prometheus.url,
// are this node's targets up and do the stock jobs that dashboards select
// have series for it.

const (
	lastScrapeMetric = "nodeagent_last_scrape_timestamp_seconds"
	// selfPath is where doctor reads the agent. The agent stamps a path
	// when it is requested, so doctor's own request hides whether anyone
	// else asked for this one; every other path tells.
	selfPath = "/metrics/nodeagent"
	// staleAfter: a path not scraped for this long is no longer scraped
	// (five missed scrapes at Prometheus' default interval of one minute).
	staleAfter   = 5 * time.Minute
	maxAgentBody = 8 << 20
)

// errNoAgent says nothing listens at the derived agent URL.
var errNoAgent = errors.New("no agent listens there")

// agentScrapes is what the agent says about its scrapers.
type agentScrapes struct {
	has  bool                 // the agent exports lastScrapeMetric
	last map[string]time.Time // path → last request
}

// isLoopback says whether host is a loopback address or localhost.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// agentClient is the client for the agent: the agent's self-signed
// certificate (--web.kubernetes-auth without a certificate) cannot be
// verified, and on loopback nothing outside the node sits between doctor
// and the agent, so verification is skipped there and only there.
func agentClient(u *url.URL) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: isLoopback(u.Hostname())}, //nolint:gosec // loopback only, see above
	}}
}

func (d *doctor) scrapeAgent(ctx context.Context) (agentScrapes, error) {
	a := d.opts.Agent
	u, err := url.Parse(strings.TrimSuffix(a.URL, "/") + selfPath)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return agentScrapes{}, fmt.Errorf("--agent.url %q is not an http or https URL", a.URL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return agentScrapes{}, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	// A bearer token goes over TLS only.
	if u.Scheme == "https" && a.TokenFile != "" {
		if tok, err := os.ReadFile(a.TokenFile); err == nil {
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		}
	}
	resp, err := agentClient(u).Do(req)
	if err != nil {
		if a.Derived && errors.Is(err, syscall.ECONNREFUSED) {
			return agentScrapes{}, fmt.Errorf("%w: GET %s: %w", errNoAgent, u, err)
		}
		return agentScrapes{}, fmt.Errorf("GET %s: %w", u, d.explainTimeout(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAgentBody))
	if err != nil {
		return agentScrapes{}, fmt.Errorf("GET %s: reading: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return agentScrapes{}, &agentStatusError{url: u.String(), code: resp.StatusCode, body: strings.TrimSpace(string(body[:min(len(body), 300)]))}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return agentScrapes{}, fmt.Errorf("GET %s: %w", u, err)
	}
	out := agentScrapes{last: map[string]time.Time{}}
	if mf, ok := mfs[lastScrapeMetric]; ok {
		out.has = true
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "path" && l.GetValue() != selfPath {
					sec := m.GetGauge().GetValue()
					out.last[l.GetValue()] = time.Unix(0, int64(sec*1e9))
				}
			}
		}
	}
	return out, nil
}

type agentStatusError struct {
	url  string
	code int
	body string
}

func (e *agentStatusError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %d %q", e.url, e.code, e.body)
}

func checkAgentScraped(ctx context.Context, d *doctor) outcome {
	a := d.opts.Agent
	if a.Unreadable != "" {
		return skipf("cannot read the agent's own metrics: %s", a.Unreadable)
	}
	s, err := d.agent.get(ctx)
	var st *agentStatusError
	switch {
	case errors.Is(err, errNoAgent):
		return skipf("no agent listens at %s (derived from --web.listen-address): give --agent.url, or run doctor where the agent runs", a.URL)
	case errors.As(err, &st) && st.code == http.StatusUnauthorized:
		return warn(fmt.Sprintf("the agent wants a bearer token (--web.kubernetes-auth): %v", err), "give --agent.token-file a service-account token (in the agent's pod the default is its own)")
	case errors.As(err, &st) && st.code == http.StatusForbidden:
		return warn(fmt.Sprintf("the agent's RBAC check denies doctor's token: %v", err), doctorRoleFix+" (its nonResourceURLs rule allows "+selfPath+")")
	case errors.As(err, &st) && st.code == http.StatusNotFound:
		return skipf("the agent at %s serves no %s: a nodeagent older than this doctor", a.URL, selfPath)
	case err != nil:
		return fail(fmt.Sprintf("cannot read the agent: %v", err), "check --agent.url (the agent's --web.listen-address), and that the agent runs")
	case !s.has:
		return skipf("the agent at %s does not export %s: a nodeagent older than this doctor", a.URL, lastScrapeMetric)
	}
	if len(s.last) == 0 {
		return fail(fmt.Sprintf("nobody has scraped the agent at %s since it started (no path but doctor's own %s was requested)", a.URL, selfPath),
			"add a scrape job for the agent: deploy/kubernetes/servicemonitor.yaml, or the jobs of deploy/prometheus/prometheus.yml; a ServiceMonitor needs a Prometheus whose serviceMonitorSelector and namespace selector match it")
	}
	paths := slices.Sorted(func(yield func(string) bool) {
		for p := range s.last {
			if !yield(p) {
				return
			}
		}
	})
	now := d.opts.Now()
	var parts []string
	var newest time.Time
	for _, p := range paths {
		t := s.last[p]
		parts = append(parts, fmt.Sprintf("%s %s ago", p, now.Sub(t).Round(time.Second)))
		if t.After(newest) {
			newest = t
		}
	}
	if age := now.Sub(newest); age > staleAfter {
		return fail(fmt.Sprintf("the agent at %s was last scraped %s ago (%s): whatever scraped it stopped", a.URL, age.Round(time.Second), strings.Join(parts, ", ")),
			"Prometheus' targets page shows the job's last error; check that the job and its ServiceMonitor still exist")
	}
	return okf("the agent at %s is scraped: %s", a.URL, strings.Join(parts, ", "))
}

// promTarget is one up series of this node.
type promTarget struct {
	job, metricsPath, instance string
	up                         bool
}

func (t promTarget) String() string {
	s := "job=" + t.job
	if t.metricsPath != "" {
		s += " metrics_path=" + t.metricsPath
	}
	return s + " instance=" + t.instance
}

// nodeSelector is the PromQL that selects this node's up series: the
// node label (prometheus-operator's kubelet job, kube-prometheus'
// node-exporter relabeling) or the instance label, with or without a port,
// as the node's name or address.
func (d *doctor) nodeSelector() string {
	names := []string{regexp.QuoteMeta(d.opts.NodeName)}
	if ip := d.opts.Getenv("NODE_IP"); ip != "" {
		names = append(names, regexp.QuoteMeta(ip))
	}
	re := "(?:" + strings.Join(names, "|") + ")(?::[0-9]+)?"
	return fmt.Sprintf("up{node=%q} or up{instance=~%q}", d.opts.NodeName, re)
}

func (d *doctor) queryUp(ctx context.Context) ([]promTarget, error) {
	c, err := api.NewClient(api.Config{Address: d.opts.Prometheus.URL})
	if err != nil {
		return nil, fmt.Errorf("--prometheus.url %q: %w", d.opts.Prometheus.URL, err)
	}
	v, _, _, err := promv1.NewAPI(c).Query(ctx, d.nodeSelector(), d.opts.Now())
	if err != nil {
		return nil, fmt.Errorf("query %s at %s: %w", d.nodeSelector(), d.opts.Prometheus.URL, d.explainTimeout(err))
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query at %s: a %s, not a vector", d.opts.Prometheus.URL, v.Type())
	}
	var out []promTarget
	for _, s := range vec {
		out = append(out, promTarget{
			job:         string(s.Metric["job"]),
			metricsPath: string(s.Metric["metrics_path"]),
			instance:    string(s.Metric["instance"]),
			up:          s.Value == 1,
		})
	}
	slices.SortFunc(out, func(a, b promTarget) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

func (d *doctor) promTargets(ctx context.Context) ([]promTarget, *outcome) {
	if d.opts.Prometheus.URL == "" {
		o := skipf("no --prometheus.url")
		return nil, &o
	}
	ts, err := d.promUp.get(ctx)
	if err != nil {
		o := fail(fmt.Sprintf("Prometheus did not answer: %v", err), "check --prometheus.url (Prometheus' own address, such as http://prometheus-k8s.monitoring:9090)")
		return nil, &o
	}
	if len(ts) == 0 {
		o := fail(fmt.Sprintf("Prometheus at %s has no target of node %s: no up series whose node or instance label is the node's name or address", d.opts.Prometheus.URL, d.opts.NodeName),
			"add scrape jobs for the node (deploy/kubernetes/servicemonitor.yaml, or deploy/prometheus/prometheus.yml); targets must carry the node's name in a node or instance label")
		return nil, &o
	}
	return ts, nil
}

func checkPromTargets(ctx context.Context, d *doctor) outcome {
	ts, skip := d.promTargets(ctx)
	if skip != nil {
		return *skip
	}
	var down []string
	for _, t := range ts {
		if !t.up {
			down = append(down, t.String())
		}
	}
	if len(down) > 0 {
		return fail(fmt.Sprintf("%d of %d targets of node %s are down (up 0): %s", len(down), len(ts), d.opts.NodeName, strings.Join(down, "; ")),
			"Prometheus' targets page shows each one's last error: 401 or 403 is the scraper's token or RBAC (docs/security.md), a TLS error the scheme or CA, a timeout the network or scrape_timeout")
	}
	return okf("all %d targets of node %s are up", len(ts), d.opts.NodeName)
}

// stockJobs are the jobs kubernetes-mixin and node-mixin select, as
// kube-prometheus names them; the agent's ServiceMonitor relabels its
// paths into them.
var stockJobs = []struct {
	job, metricsPath, serves string
	needed                   bool
}{
	{"node-exporter", "", "node_* (node-mixin, USE dashboards)", true},
	{"kubelet", "/metrics", "the kubelet's own metrics (kubelet dashboard, KubeletDown)", true},
	{"kubelet", "/metrics/cadvisor", "container_* (compute resources dashboards)", true},
	{"kubelet", "/metrics/probes", "prober_probe_total (probe alerts)", false},
}

func checkPromJobs(ctx context.Context, d *doctor) outcome {
	ts, skip := d.promTargets(ctx)
	if skip != nil {
		return *skip
	}
	var missing, optional, present []string
	for _, j := range stockJobs {
		name := "job=" + j.job
		if j.metricsPath != "" {
			name += " metrics_path=" + j.metricsPath
		}
		found := slices.ContainsFunc(ts, func(t promTarget) bool {
			return t.job == j.job && (j.metricsPath == "" || t.metricsPath == j.metricsPath)
		})
		switch {
		case found:
			present = append(present, name)
		case j.needed:
			missing = append(missing, name+" ("+j.serves+")")
		default:
			optional = append(optional, name+" ("+j.serves+")")
		}
	}
	const fix = "relabel the agent's paths into the stock jobs (/metrics/node → job node-exporter; /metrics/kubelet, /metrics/cadvisor, /metrics/probes → job kubelet with metrics_path /metrics, /metrics/cadvisor, /metrics/probes), as deploy/kubernetes/servicemonitor.yaml and deploy/prometheus/prometheus.yml do"
	switch {
	case len(missing) > 0:
		return fail(fmt.Sprintf("no series for node %s from %s: those dashboards stay empty for it", d.opts.NodeName, strings.Join(append(missing, optional...), "; ")), fix)
	case len(optional) > 0:
		return warn(fmt.Sprintf("no series for node %s from %s", d.opts.NodeName, strings.Join(optional, "; ")), fix)
	}
	return okf("node %s has series from every stock job: %s", d.opts.NodeName, strings.Join(present, "; "))
}
