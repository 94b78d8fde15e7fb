package main

import (
	"errors"
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
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

type handlerConfig struct {
	scraper *collectors.Scraper
	// self holds nodeagent's own long-lived metrics (build info, Go,
	// process, error counters, the last scrape of each path); served on
	// /metrics and /metrics/nodeagent only, because the passthroughs have
	// go_* and process_* families of their own.
	self        *prometheus.Registry
	logger      *slog.Logger
	maxRequests int
	offset      time.Duration
	// expo is how answers are written (--web.parallel-gzip).
	expo exposition.Options
	// kubeletOff says why the kubelet layer is off; empty when it is on.
	kubeletOff string
	// absent says why each collector that was not built is missing
	// (collectors.Selection.Absent).
	absent map[string]string
}

// endpoint is one metrics path and the enabled collectors it serves.
type endpoint struct {
	path  string
	names []string
	self  bool
	// layer says what is missing when no collector is enabled here.
	layer collectors.Layer
	// passthrough: the path passes one source through, and its status is
	// the source's (503 when it cannot be fetched, 404 when it is not here).
	passthrough bool
	// collector is the passthrough's collector, built or not.
	collector string
}

// planEndpoints maps enabled collectors to paths
// (docs/architecture.md#paths-and-jobs): the
// node and cadvisor layers on /metrics/<layer>, the security layer with the
// self-metrics on /metrics/nodeagent, all of those on /metrics; each
// passthrough collector X (the kubelet's paths, kube-proxy, the container
// runtime) alone on /metrics/X, which exists whether X was built or not,
// so that a scrape of it gets a 404 saying why rather than the mux's bare
// one. A layered setup scrapes the per-layer paths (each relabelled as the
// job dashboards expect) and /metrics/nodeagent; a simple one scrapes
// /metrics alone.
func planEndpoints(instances []collectors.Instance) []*endpoint {
	all := &endpoint{path: "/metrics", self: true}
	own := &endpoint{path: "/metrics/nodeagent", self: true, layer: collectors.LayerSecurity}
	byPath := map[string]*endpoint{
		"/metrics":           all,
		"/metrics/node":      {path: "/metrics/node", layer: collectors.LayerNode},
		"/metrics/cadvisor":  {path: "/metrics/cadvisor", layer: collectors.LayerCadvisor},
		"/metrics/nodeagent": own,
	}
	for _, r := range collectors.Registrations() {
		if r.Passthrough {
			p := passthroughPath(r.Name)
			byPath[p] = &endpoint{path: p, layer: r.Layer, passthrough: true, collector: r.Name}
		}
	}
	for _, in := range instances {
		switch {
		case in.Passthrough:
			p := passthroughPath(in.Name)
			ep, ok := byPath[p]
			if !ok {
				ep = &endpoint{path: p, layer: in.Layer, passthrough: true, collector: in.Name}
				byPath[p] = ep
			}
			ep.names = append(ep.names, in.Name)
		case in.Layer == collectors.LayerSecurity:
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

// passthroughPath is where the passthrough collector name is served.
func passthroughPath(name string) string { return "/metrics/" + name }

type handler struct {
	handlerConfig
	mux      *http.ServeMux
	inFlight chan struct{}
	known    map[string]bool // every registered collector name → enabled
	// passthroughs are the enabled passthrough collectors, whose last
	// outcome /metrics and /metrics/nodeagent report.
	passthroughs []string
	// sources say where each passthrough fetches from, for messages.
	sources map[string]string
	// lastScrape is nodeagent_last_scrape_timestamp_seconds{path}.
	lastScrape *prometheus.GaugeVec
}

// sourcer is a passthrough collector that can say where it fetches from.
type sourcer interface{ Source() string }

func newHandler(c handlerConfig) (*handler, error) {
	h := &handler{handlerConfig: c, mux: http.NewServeMux(), known: map[string]bool{}, sources: map[string]string{}}
	if c.maxRequests > 0 {
		h.inFlight = make(chan struct{}, c.maxRequests)
	}
	for _, r := range collectors.Registrations() {
		h.known[r.Name] = false
	}
	for _, in := range c.scraper.Instances() {
		h.known[in.Name] = true
		if in.Passthrough {
			h.passthroughs = append(h.passthroughs, in.Name)
			if s, ok := in.Collector.(sourcer); ok {
				h.sources[in.Name] = s.Source()
			}
		}
	}
	// Another program (nodeagent doctor, an operator's query) tells from it
	// whether anyone scrapes each path: a path never asked has no series.
	h.lastScrape = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "nodeagent_last_scrape_timestamp_seconds",
		Help: "nodeagent: when this metrics path was last requested, in seconds since the epoch, whatever the answer.",
	}, []string{"path"})
	if err := c.self.Register(h.lastScrape); err != nil {
		return nil, fmt.Errorf("registering nodeagent_last_scrape_timestamp_seconds: %w", err)
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
		links = append(links, web.LandingLinks{Address: ep.path, Text: ep.path, Description: h.describe(ep)})
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
	return "<div>Off on this host (no collector of theirs is enabled; they answer 404 saying why): " +
		html.EscapeString(strings.Join(paths, ", ")) + "</div>"
}

func (h *handler) describe(ep *endpoint) string {
	switch {
	case ep.passthrough && len(ep.names) > 0:
		return fmt.Sprintf("%s passed through (503 while it cannot be fetched)", h.source(ep.collector))
	case len(ep.names) == 0 && ep.self:
		return "nodeagent's own metrics"
	case len(ep.names) == 0:
		return "no collector enabled"
	case ep.self:
		return "nodeagent's own metrics and collectors: " + strings.Join(ep.names, ", ")
	}
	return "collectors: " + strings.Join(ep.names, ", ")
}

// source is where passthrough name fetches from, or its name.
func (h *handler) source(name string) string {
	if s := h.sources[name]; s != "" {
		return s
	}
	return name
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// serves says whether a route matches r (false: the mux answers 404 or
// 405).
func (h *handler) serves(r *http.Request) bool {
	_, pattern := h.mux.Handler(r)
	return pattern != ""
}

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
		h.lastScrape.WithLabelValues(ep.path).Set(float64(time.Now().UnixNano()) / 1e9)
		if len(ep.names) == 0 && !ep.self {
			http.Error(w, h.offReason(ep), http.StatusNotFound)
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
		if ep.passthrough {
			h.passthrough(w, r, names, deadline)
			return
		}
		var res collectors.Result
		if len(names) > 0 {
			res, err = h.scraper.GatherResult(deadline, names)
		}
		if ep.self {
			res, err = withOwn(res, err, prometheus.Gatherers{h.self, h.passthroughOutcomes()})
		}
		h.serve(w, r, res, err)
	})
}

// passthrough serves a path that passes one source through. The status is
// decided before a byte of the body is written: 503 with the reason when
// the source could not be fetched (down, slow past the deadline, refused
// credentials, too large, garbage), 404 when it is not on this node, 200
// with its families otherwise. Never a half-written exposition.
func (h *handler) passthrough(w http.ResponseWriter, r *http.Request, names []string, deadline time.Time) {
	if len(names) == 0 { // exclude[] left nothing
		h.serve(w, r, collectors.Result{}, nil)
		return
	}
	res, gatherErr := h.scraper.GatherResult(deadline, names)
	var failed, missing []string
	for _, n := range names {
		err, ok := res.Errors[n]
		switch {
		case !ok && gatherErr != nil:
			failed = append(failed, h.sourceError(n, gatherErr))
		case errors.Is(err, collectors.ErrNoData):
			missing = append(missing, h.sourceError(n, err))
		case err != nil:
			failed = append(failed, h.sourceError(n, err))
		}
	}
	switch {
	case len(failed) > 0:
		http.Error(w, strings.Join(failed, "\n"), http.StatusServiceUnavailable)
		return
	case len(missing) == len(names):
		http.Error(w, strings.Join(missing, "\n"), http.StatusNotFound)
		return
	}
	h.serve(w, r, res, gatherErr)
}

// sourceError is one line of a passthrough's error body: which collector,
// which URL, what failed.
func (h *handler) sourceError(name string, err error) string {
	msg := withoutNoData(err.Error())
	if src := h.sources[name]; src != "" && !strings.Contains(msg, src) {
		return fmt.Sprintf("%s %s: %s", name, src, msg)
	}
	return fmt.Sprintf("%s: %s", name, msg)
}

// passthroughOutcomes reports, on /metrics and /metrics/nodeagent,
// nodeagent_scrape_collector_success of each passthrough as of the last
// scrape of its own path: a 503 there says why in its body, and this
// series says that it happened to whoever scrapes nodeagent itself.
func (h *handler) passthroughOutcomes() prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		if len(h.passthroughs) == 0 {
			return nil, nil
		}
		reg := prometheus.NewRegistry()
		if err := reg.Register(collectors.MetricSlice(h.scraper.LastSuccess(h.passthroughs))); err != nil {
			return nil, err
		}
		return reg.Gather()
	})
}

// offReason is the 404 body of a path that no enabled collector serves.
func (h *handler) offReason(ep *endpoint) string {
	if !ep.passthrough {
		msg := fmt.Sprintf("no collector of layer %s is enabled, so %s serves nothing on this host", ep.layer, ep.path)
		if ep.layer == collectors.LayerKubelet && h.kubeletOff != "" {
			msg += ": " + h.kubeletOff
		}
		return msg
	}
	msg := fmt.Sprintf("%s serves nothing on this host", ep.path)
	reason := withoutNoData(h.absent[ep.collector])
	if reason == "" && ep.layer == collectors.LayerKubelet && h.kubeletOff != "" {
		reason = h.kubeletOff
	}
	if reason != "" {
		msg += ": " + reason
	}
	return msg
}

// withoutNoData drops the "collector returned no data" that leads an
// ErrNoData reason: a 404 says that already.
func withoutNoData(msg string) string {
	return strings.TrimPrefix(msg, collectors.ErrNoData.Error()+": ")
}

// serve writes res's families in the format and encoding the scraper
// asked for (internal/exposition); err is the gather's.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, res collectors.Result, err error) {
	h.expo.Write(w, r, res.Families, res.Compact, err, func(msg string, err error) {
		h.logger.Error(msg, "path", r.URL.Path, "err", err)
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
