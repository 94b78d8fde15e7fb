package main

import (
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/nodeagent/nodeagent/collectors"
)

type handlerConfig struct {
	scraper *collectors.Scraper
	// self gathers nodeagent's own long-lived metrics (build info, Go,
	// process, error counters); served on /metrics only, because the kubelet
	// passthrough has go_* and process_* families of its own.
	self        prometheus.Gatherer
	logger      *slog.Logger
	maxRequests int
	offset      time.Duration
	// kubeletOff says why the kubelet layer is off; empty when it is on.
	kubeletOff string
}

// endpoint is one metrics path and the enabled collectors it serves.
type endpoint struct {
	path  string
	names []string
	self  bool
	// layer says what is missing when no collector is enabled here.
	layer collectors.Layer
}

// Paths the kubelet layer always has, so that a ServiceMonitor pointing at
// them gets a clear 404 message rather than the mux's bare one.
var kubeletPaths = []string{"/metrics/kubelet", "/metrics/probes"}

// planEndpoints maps enabled collectors to paths
// (docs/architecture.md#paths-and-jobs): the
// node and cadvisor layers on /metrics/<layer>, the security layer with the
// self-metrics on /metrics/nodeagent, all of those on /metrics; each
// kubelet-layer collector X only on /metrics/X. A layered setup scrapes the
// per-layer paths (each relabelled as the job dashboards expect) and
// /metrics/nodeagent; a simple one scrapes /metrics alone.
func planEndpoints(instances []collectors.Instance) []*endpoint {
	all := &endpoint{path: "/metrics", self: true}
	own := &endpoint{path: "/metrics/nodeagent", self: true, layer: collectors.LayerSecurity}
	byPath := map[string]*endpoint{
		"/metrics":           all,
		"/metrics/node":      {path: "/metrics/node", layer: collectors.LayerNode},
		"/metrics/cadvisor":  {path: "/metrics/cadvisor", layer: collectors.LayerCadvisor},
		"/metrics/nodeagent": own,
	}
	for _, p := range kubeletPaths {
		byPath[p] = &endpoint{path: p, layer: collectors.LayerKubelet}
	}
	for _, in := range instances {
		switch in.Layer {
		case collectors.LayerKubelet:
			p := "/metrics/" + in.Name
			ep, ok := byPath[p]
			if !ok {
				ep = &endpoint{path: p, layer: collectors.LayerKubelet}
				byPath[p] = ep
			}
			ep.names = append(ep.names, in.Name)
		case collectors.LayerSecurity:
			all.names = append(all.names, in.Name)
			own.names = append(own.names, in.Name)
		default:
			all.names = append(all.names, in.Name)
			if ep, ok := byPath["/metrics/"+string(in.Layer)]; ok {
				ep.names = append(ep.names, in.Name)
			}
		}
	}
	out := make([]*endpoint, 0, len(byPath))
	for _, ep := range byPath {
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b *endpoint) int { return strings.Compare(a.path, b.path) })
	return out
}

type handler struct {
	handlerConfig
	mux      *http.ServeMux
	inFlight chan struct{}
	known    map[string]bool // every registered collector name → enabled
}

func newHandler(c handlerConfig) (*handler, error) {
	h := &handler{handlerConfig: c, mux: http.NewServeMux(), known: map[string]bool{}}
	if c.maxRequests > 0 {
		h.inFlight = make(chan struct{}, c.maxRequests)
	}
	for _, r := range collectors.Registrations() {
		h.known[r.Name] = false
	}
	for _, in := range c.scraper.Instances() {
		h.known[in.Name] = true
	}
	var links []web.LandingLinks
	var off []string
	for _, ep := range planEndpoints(c.scraper.Instances()) {
		h.mux.Handle("GET "+ep.path, h.metrics(ep))
		if len(ep.names) == 0 && !ep.self {
			// Served, but as a 404 saying why: named, not linked.
			off = append(off, ep.path)
			continue
		}
		links = append(links, web.LandingLinks{Address: ep.path, Text: ep.path, Description: describe(ep)})
	}
	h.addHealth(h.mux)
	links = append(links,
		web.LandingLinks{Address: "/healthz", Text: "/healthz", Description: "liveness"},
		web.LandingLinks{Address: "/readyz", Text: "/readyz", Description: "readiness: every enabled layer has completed a first collection"})
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "nodeagent",
		Description: "Node, container and kubelet metrics of one node from one endpoint",
		Version:     version.Info(),
		Links:       links,
		ExtraHTML:   offHTML(off),
		// The toolkit links /debug/pprof/ here by default, but pprof is
		// served only on --debug.pprof-address, a loopback listener of its
		// own: every link on this page must answer on this listener.
		Profiling: "false",
	})
	if err != nil {
		return nil, fmt.Errorf("building landing page: %w", err)
	}
	h.mux.Handle("GET /{$}", landing)
	return h, nil
}

// offHTML names the metrics paths that serve nothing on this host.
func offHTML(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	return "<div>Off on this host (no collector of their layer is enabled; they answer 404 saying why): " +
		html.EscapeString(strings.Join(paths, ", ")) + "</div>"
}

func describe(ep *endpoint) string {
	switch {
	case len(ep.names) == 0 && ep.self:
		return "nodeagent's own metrics"
	case len(ep.names) == 0:
		return "no collector enabled"
	case ep.self:
		return "nodeagent's own metrics and collectors: " + strings.Join(ep.names, ", ")
	}
	return "collectors: " + strings.Join(ep.names, ", ")
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// addHealth adds /healthz and /readyz to mux.
func (h *handler) addHealth(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", h.readyz)
}

// healthHandler serves only /healthz and /readyz, for --web.health-address:
// kubelet probes carry no client certificate or password, and these two
// paths reveal nothing but "ok" and which layers are not ready yet.
func (h *handler) healthHandler() http.Handler {
	mux := http.NewServeMux()
	h.addHealth(mux)
	return mux
}

func (h *handler) readyz(w http.ResponseWriter, _ *http.Request) {
	if missing := h.scraper.NotReady(); len(missing) > 0 {
		parts := make([]string, len(missing))
		for i, l := range missing {
			parts[i] = string(l)
		}
		http.Error(w, "not ready: no first collection yet for layers "+strings.Join(parts, ", "), http.StatusServiceUnavailable)
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}

func (h *handler) metrics(ep *endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(ep.names) == 0 && !ep.self {
			msg := fmt.Sprintf("no collector of layer %s is enabled, so %s serves nothing on this host", ep.layer, ep.path)
			if ep.layer == collectors.LayerKubelet && h.kubeletOff != "" {
				msg += ": " + h.kubeletOff
			}
			http.Error(w, msg, http.StatusNotFound)
			return
		}
		if h.inFlight != nil {
			select {
			case h.inFlight <- struct{}{}:
				defer func() { <-h.inFlight }()
			default:
				http.Error(w, fmt.Sprintf("too many concurrent scrapes (--web.max-requests=%d)", h.maxRequests), http.StatusServiceUnavailable)
				return
			}
		}
		names, err := h.filter(ep, r.URL.Query())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		deadline := time.Now().Add(h.timeout(r))
		var g prometheus.Gatherer = prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
			if len(names) == 0 {
				return nil, nil
			}
			return h.scraper.Gather(deadline, names)
		})
		if ep.self {
			g = prometheus.Gatherers{g, h.self}
		}
		promhttp.HandlerFor(g, promhttp.HandlerOpts{
			ErrorLog:      slogPrinter{h.logger},
			ErrorHandling: promhttp.ContinueOnError,
		}).ServeHTTP(w, r)
	})
}

// filter applies node_exporter's collect[] (keep only these) and exclude[]
// (drop these) query parameters.
func (h *handler) filter(ep *endpoint, q url.Values) ([]string, error) {
	check := func(n string) error {
		enabled, known := h.known[n]
		switch {
		case !known:
			return fmt.Errorf("unknown collector %q", n)
		case !enabled:
			return fmt.Errorf("collector %q is disabled (enable it with --collector.%s)", n, n)
		case !slices.Contains(ep.names, n):
			return fmt.Errorf("collector %q is not served on %s", n, ep.path)
		}
		return nil
	}
	names := ep.names
	if include := q["collect[]"]; len(include) > 0 {
		names = nil
		for _, n := range include {
			if err := check(n); err != nil {
				return nil, err
			}
			if !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		slices.Sort(names)
	}
	if exclude := q["exclude[]"]; len(exclude) > 0 {
		for _, n := range exclude {
			if err := check(n); err != nil {
				return nil, err
			}
		}
		names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return slices.Contains(exclude, n) })
	}
	return names, nil
}

// timeout is the collector deadline for one request: --scrape.timeout, or
// less when Prometheus says its own scrape timeout is shorter.
func (h *handler) timeout(r *http.Request) time.Duration {
	d := h.scraper.Timeout()
	v := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if v == "" {
		return d
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs <= 0 {
		return d
	}
	t := time.Duration(secs * float64(time.Second))
	if t > h.offset {
		t -= h.offset
	}
	return min(d, t)
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.l.Error(fmt.Sprint(v...)) }
