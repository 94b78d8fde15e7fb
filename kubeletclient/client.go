package kubeletclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/transport"

	"github.com/nodeagent/nodeagent/internal/podmeta"
	"github.com/nodeagent/nodeagent/internal/promfetch"
)

// Error classes a caller acts on (the security checks, the error metric's
// reason label): promfetch's, so that the kubelet's errors and those of the
// other passthrough sources read and count alike. Every error wraps one of
// them with the URL and what to do.
var (
	ErrUnreachable  = promfetch.ErrUnreachable
	ErrTimeout      = promfetch.ErrTimeout
	ErrTLS          = promfetch.ErrTLS
	ErrUnauthorized = promfetch.ErrUnauthorized
	ErrForbidden    = promfetch.ErrForbidden
	ErrStatus       = promfetch.ErrStatus
	ErrTooLarge     = promfetch.ErrTooLarge
	ErrBadBody      = promfetch.ErrBadBody
)

const userAgent = "nodeagent"

// Client talks to one kubelet. It is safe for concurrent use; cmd/nodeagent
// builds one and shares it.
type Client struct {
	base      *url.URL     // the authenticated port
	readOnly  *url.URL     // http://<kubelet host>:<read-only port>
	authed    *http.Client // with our credentials
	anonymous *http.Client // same TLS, no credentials: the anonymous-auth check
	plain     *http.Client // plain HTTP: the read-only port check
	cfg       Config
	creds     credentials
	trust     string // what verifies the kubelet's certificate, for messages
	metrics   *clientMetrics
}

// credentials describes how the client authenticates, for error hints.
type credentials struct {
	tokenFile string
	certFile  string
}

func (c credentials) String() string {
	switch {
	case c.tokenFile != "":
		return "bearer token from " + c.tokenFile
	case c.certFile != "":
		return "client certificate " + c.certFile
	}
	return "no credentials"
}

// New builds the client from cfg. The kubelet's address comes from
// --kubelet.url or the environment (getenv); when none is known it returns
// an error wrapping ErrNoKubelet, and the kubelet layer stays off. Its
// nodeagent_kubelet_* metrics go on reg.
func New(cfg Config, getenv func(string) string, logger *slog.Logger, reg prometheus.Registerer) (*Client, error) {
	t, err := cfg.resolve(getenv)
	if err != nil {
		return nil, err
	}
	// client-go's transport package, not rest: rest would link the whole
	// API machinery (serializers, schemes) for what is only an
	// authenticated HTTP client here.
	rc := &transport.Config{UserAgent: userAgent, TLS: transport.TLSConfig{Insecure: cfg.InsecureSkipVerify}}
	anon := &transport.Config{UserAgent: userAgent, TLS: transport.TLSConfig{Insecure: cfg.InsecureSkipVerify}}
	var creds credentials
	trust := "the system's trusted CAs"
	switch {
	case cfg.InsecureSkipVerify:
		trust = "nothing (--kubelet.insecure-skip-verify)"
	case cfg.CAFile != "":
		if _, err := os.Stat(cfg.CAFile); err != nil && !cfg.caFileSet && errors.Is(err, os.ErrNotExist) {
			logger.Info("no in-cluster CA file; verifying the kubelet against the system's trusted CAs", "ca_file", cfg.CAFile)
			break
		} else if err != nil {
			return nil, fmt.Errorf("--kubelet.ca-file: %w", err)
		}
		rc.TLS.CAFile, anon.TLS.CAFile = cfg.CAFile, cfg.CAFile
		trust = "--kubelet.ca-file " + cfg.CAFile
	}
	switch {
	case cfg.ClientCertFile != "":
		for _, f := range []string{cfg.ClientCertFile, cfg.ClientKeyFile} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("kubelet client certificate: %w", err)
			}
		}
		rc.TLS.CertFile, rc.TLS.KeyFile = cfg.ClientCertFile, cfg.ClientKeyFile
		creds.certFile = cfg.ClientCertFile
	case cfg.TokenFile != "":
		if _, err := os.Stat(cfg.TokenFile); err != nil && !cfg.tokenFileSet && errors.Is(err, os.ErrNotExist) {
			logger.Info("no service-account token file; requests to the kubelet carry no credentials", "token_file", cfg.TokenFile)
			break
		} else if err != nil {
			return nil, fmt.Errorf("--kubelet.token-file: %w", err)
		}
		// client-go's caching file token source re-reads the file every
		// minute and, through this wrapper, drops the cached token when the
		// kubelet answers 401, so the retry in fetch picks up a rotated token.
		rc.WrapTransport = transport.ResettableTokenSourceWrapTransport(transport.NewCachedFileTokenSource(cfg.TokenFile))
		creds.tokenFile = cfg.TokenFile
	}
	authedRT, err := transport.New(rc)
	if err != nil {
		return nil, fmt.Errorf("kubelet client TLS (%s, %s): %w", trust, creds, err)
	}
	anonRT, err := transport.New(anon)
	if err != nil {
		return nil, fmt.Errorf("kubelet client TLS (%s): %w", trust, err)
	}
	c, err := newClient(cfg, t.base, &http.Client{Transport: authedRT}, &http.Client{Transport: anonRT}, reg)
	if err != nil {
		return nil, err
	}
	c.creds, c.trust = creds, trust
	logger.Info("kubelet client", "url", t.base.String(), "from", t.from, "auth", creds.String(), "verified_by", trust)
	if cfg.InsecureSkipVerify {
		logger.Warn("TLS verification of the kubelet is off (--kubelet.insecure-skip-verify): anyone who can intercept the connection can impersonate the kubelet and read the agent's credentials; give --kubelet.ca-file instead")
	}
	return c, nil
}

// newClient wires a client over given HTTP clients, so tests and benchmarks
// can use any server.
func newClient(cfg Config, base *url.URL, authed, anonymous *http.Client, reg prometheus.Registerer) (*Client, error) {
	m, err := newClientMetrics(reg, !cfg.InsecureSkipVerify)
	if err != nil {
		return nil, err
	}
	ro := &url.URL{Scheme: "http", Host: net.JoinHostPort(base.Hostname(), strconv.Itoa(cfg.ReadOnlyPort))}
	return &Client{
		base:      base,
		readOnly:  ro,
		authed:    authed,
		anonymous: anonymous,
		// No proxy: the check is about who on the network reaches the port.
		plain:   &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}},
		cfg:     cfg,
		trust:   "the configured CAs",
		metrics: m,
	}, nil
}

// URLOf is the URL of path on the authenticated port, for messages.
func (c *Client) URLOf(path string) string { return c.base.JoinPath(path).String() }

// SecurityCheckInterval is how often the security checks run again.
func (c *Client) SecurityCheckInterval() time.Duration { return c.cfg.SecurityCheckInterval }

// Metrics fetches one of the kubelet's metrics paths (/metrics,
// /metrics/probes, /metrics/resource, /metrics/slis) and returns its
// families unchanged, sorted by name, without timestamps. An error wrapping
// promfetch.ErrRepaired comes with families that are good to serve.
func (c *Client) Metrics(ctx context.Context, path string) ([]*dto.MetricFamily, error) {
	mfs, err := promfetch.Metrics(ctx, c.target(c.authed, path, promfetch.AcceptMetrics))
	c.metrics.record(path, err)
	return mfs, err
}

// Pods fetches /pods and decodes it into pod metadata.
func (c *Client) Pods(ctx context.Context) (*podmeta.Snapshot, error) {
	const path = "/pods"
	body, _, err := promfetch.Get(ctx, c.target(c.authed, path, "application/json"))
	var snap *podmeta.Snapshot
	if err == nil {
		snap, err = DecodePods(body)
		if err != nil {
			err = fmt.Errorf("GET %s: %w: %w", c.base.JoinPath(path), ErrBadBody, err)
		}
	}
	c.metrics.record(path, err)
	return snap, err
}

// target is one request to path of the authenticated port with hc, under
// the client's timeout and body cap; errors say in operator terms what went
// wrong and what to change.
func (c *Client) target(hc *http.Client, path, accept string) promfetch.Target {
	ex := c.explainer(hc == c.authed)
	return promfetch.Target{
		URL:               c.base.JoinPath(path),
		Client:            hc,
		Accept:            accept,
		Timeout:           c.cfg.Timeout,
		MaxBody:           int64(c.cfg.MaxBodySize),
		MaxBodyFlag:       "--kubelet.max-body-size",
		RetryUnauthorized: ex.retry401,
		Explainer:         ex,
	}
}

// explainer turns a failed exchange into an operator's error.
type explainer struct {
	creds credentials
	trust string
	// base is the authenticated port: paths below it name RBAC rules.
	base *url.URL
	// retry401: a token may have rotated; client-go dropped the cached one
	// on the 401, so one retry reads the file again.
	retry401 bool
}

func (c *Client) explainer(authed bool) explainer {
	e := explainer{trust: c.trust, base: c.base}
	if authed {
		e.creds = c.creds
		e.retry401 = c.creds.tokenFile != ""
	}
	return e
}

// isRefused says whether err is a refused connection: nothing listens.
func isRefused(err error) bool { return promfetch.IsRefused(err) }
