package kubelet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"

	"github.com/alecthomas/units"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/transport"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/promfetch"
)

// sourceConfig is the flags of one node component other than the kubelet
// whose metrics endpoint is passed through (kube-proxy, the container
// runtime): where it is, and, for an endpoint behind TLS and a token (a
// kube-rbac-proxy in front of it), how to reach it.
type sourceConfig struct {
	name    string // the collector's name and the flags' prefix
	urlFlag string // the URL's flag, without "--"

	URL       string
	urlSet    bool // given on the command line: failures are the user's source failing
	CAFile    string
	TokenFile string
	MaxBody   units.Base2Bytes
}

func (c *sourceConfig) addFlags(app collectors.FlagApp, defaultURL, urlHelp string) {
	app.Flag(c.urlFlag, urlHelp).Default(defaultURL).IsSetByUser(&c.urlSet).StringVar(&c.URL)
	app.Flag(c.name+".ca-file", "CA certificates that verify "+c.name+"'s metrics endpoint when its URL is https; empty for the system's trusted CAs.").
		Default("").StringVar(&c.CAFile)
	app.Flag(c.name+".token-file", "Bearer token file sent to "+c.name+"'s metrics endpoint (https only; re-read when it rotates), for an endpoint behind kube-rbac-proxy. Empty for none.").
		Default("").StringVar(&c.TokenFile)
	app.Flag(c.name+".max-body-size", "Largest response accepted from "+c.name+"'s metrics endpoint; larger ones are refused.").
		Default("32MiB").BytesVar(&c.MaxBody)
}

// target checks the settings and returns the request that fetches raw;
// errors call the component who. Any problem is a startup error naming the
// flag.
func (c *sourceConfig) target(raw, who string) (promfetch.Target, error) {
	flag := func(s string) string { return "--" + c.name + "." + s }
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return promfetch.Target{}, fmt.Errorf("--%s: %w", c.urlFlag, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return promfetch.Target{}, fmt.Errorf("--%s %q: the scheme must be http or https", c.urlFlag, raw)
	case u.Hostname() == "":
		return promfetch.Target{}, fmt.Errorf("--%s %q has no host", c.urlFlag, raw)
	case c.TokenFile != "" && u.Scheme != "https":
		return promfetch.Target{}, fmt.Errorf("%s is sent only over https, and --%s is %q", flag("token-file"), c.urlFlag, raw)
	case c.CAFile != "" && u.Scheme != "https":
		return promfetch.Target{}, fmt.Errorf("%s verifies https endpoints, and --%s is %q", flag("ca-file"), c.urlFlag, raw)
	case c.MaxBody <= 0:
		return promfetch.Target{}, fmt.Errorf("%s must be positive, got %s", flag("max-body-size"), c.MaxBody)
	}
	for f, path := range map[string]string{flag("ca-file"): c.CAFile, flag("token-file"): c.TokenFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return promfetch.Target{}, fmt.Errorf("%s: %w", f, err)
		}
	}
	// client-go's transport: the token file is re-read as it rotates, as
	// for the kubelet.
	rt, err := transport.New(&transport.Config{UserAgent: "nodeagent", BearerTokenFile: c.TokenFile, TLS: transport.TLSConfig{CAFile: c.CAFile}})
	if err != nil {
		return promfetch.Target{}, fmt.Errorf("%s TLS (%s %q): %w", c.name, flag("ca-file"), c.CAFile, err)
	}
	return promfetch.Target{
		URL:               u,
		Client:            &http.Client{Transport: rt},
		MaxBody:           int64(c.MaxBody),
		MaxBodyFlag:       flag("max-body-size"),
		RetryUnauthorized: c.TokenFile != "",
		Explainer:         promfetch.Generic{Source: who, FlagPrefix: "--" + c.name + "."},
	}, nil
}

// sourcePassthrough serves one component's metrics endpoint unchanged, as
// the kubelet passthroughs do: protobuf or text, timestamps stripped, body
// and time bounded (promfetch), every family as it came.
type sourcePassthrough struct {
	// collector is the collector's name: the source label of its metrics.
	collector string
	// name is the component's, in messages.
	name   string
	target promfetch.Target
	// candidate: the URL is a default or was detected, not given. Then
	// nothing listening, a 404, or an answer that is not this component's
	// means "not on this node" (ErrNoData, the path answers 404); given by
	// the user, every failure fails (503).
	candidate bool
	// prefixes: a candidate's answer must hold a family starting with one
	// of them to be taken for this component (CRI-O's default port 9090 is
	// also Prometheus').
	prefixes []string
	// hint says how to turn the component's metrics on, for a candidate
	// found absent.
	hint     string
	metrics  *sourceMetrics
	repaired repairLog
	logger   *slog.Logger
}

// UpdateFamilies fetches the component's families.
func (c *sourcePassthrough) UpdateFamilies(ctx context.Context) ([]*dto.MetricFamily, error) {
	mfs, err := promfetch.Metrics(ctx, c.target)
	if (err == nil || errors.Is(err, promfetch.ErrRepaired)) && c.candidate && !c.recognised(mfs) {
		err = fmt.Errorf("GET %s: %w: no family starts with %s, so what answers there is not %s's metrics", c.target.URL, promfetch.ErrBadBody, strings.Join(c.prefixes, " or "), c.name)
	}
	if c.candidate && absent(err) {
		c.metrics.forget(c.collector)
		return nil, fmt.Errorf("%w: %s not found at its default address %s: %w; %s", collectors.ErrNoData, c.name, c.target.URL, err, c.hint)
	}
	c.metrics.record(c.collector, err)
	switch {
	case err == nil:
		c.repaired.clear()
		return mfs, nil
	case errors.Is(err, promfetch.ErrRepaired):
		c.repaired.warn(c.logger, err)
		return mfs, nil
	}
	return nil, err
}

// absent says whether a candidate's failure means the component is not
// there: nothing listens, the path is not served, or what answers is not
// metrics.
func absent(err error) bool {
	return promfetch.IsRefused(err) || errors.Is(err, promfetch.ErrNotFound) ||
		(errors.Is(err, promfetch.ErrBadBody) && !errors.Is(err, promfetch.ErrRepaired))
}

func (c *sourcePassthrough) recognised(mfs []*dto.MetricFamily) bool {
	return slices.ContainsFunc(mfs, func(mf *dto.MetricFamily) bool {
		return slices.ContainsFunc(c.prefixes, func(p string) bool { return strings.HasPrefix(mf.GetName(), p) })
	})
}

func (c *sourcePassthrough) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendFamilies(ctx, ch, c.UpdateFamilies)
}

// Source is where the families come from, for the messages of the path.
func (c *sourcePassthrough) Source() string { return c.target.URL.String() }

// sourceMetrics are nodeagent_passthrough_*, one family for all the
// components, labelled by source, served on /metrics and
// /metrics/nodeagent as the kubelet client's nodeagent_kubelet_* are.
type sourceMetrics struct {
	up     *prometheus.GaugeVec
	errors *prometheus.CounterVec
}

// newSourceMetrics registers the families on reg, or takes the ones the
// other component registered there first.
func newSourceMetrics(reg prometheus.Registerer) (*sourceMetrics, error) {
	m := &sourceMetrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodeagent_passthrough_up",
			Help: "nodeagent: whether the last request to this source's metrics endpoint succeeded and its answer decoded (1) or not (0); absent for a source not found at its default address.",
		}, []string{"source"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeagent_passthrough_request_errors_total",
			Help: "nodeagent: failed requests to a source's metrics endpoint by source and reason (unreachable, timeout, tls, unauthorized, forbidden, status, too_large, bad_body, canceled).",
		}, []string{"source", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.up, err = registerOrExisting(reg, m.up); err != nil {
		return nil, err
	}
	if m.errors, err = registerOrExisting(reg, m.errors); err != nil {
		return nil, err
	}
	return m, nil
}

func registerOrExisting[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c, nil
	case errors.As(err, &already):
		if existing, ok := already.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("registering nodeagent_passthrough_* metrics: %w", err)
}

// record notes the outcome of one request: as for the kubelet, a body
// repaired of repeated series is served, so the source counts as up.
func (m *sourceMetrics) record(source string, err error) {
	up := 0.0
	if err == nil || errors.Is(err, promfetch.ErrRepaired) {
		up = 1
	}
	m.up.WithLabelValues(source).Set(up)
	if err != nil {
		m.errors.WithLabelValues(source, promfetch.Reason(err)).Inc()
	}
}

// forget drops the up series of a source not found: a node without
// kube-proxy has no kube-proxy to be down.
func (m *sourceMetrics) forget(source string) { m.up.DeleteLabelValues(source) }
