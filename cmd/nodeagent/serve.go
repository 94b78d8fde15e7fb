package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/prometheus/client_golang/prometheus"
	promcollectors "github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"
	"golang.org/x/sync/errgroup"

	"github.com/nodeagent/nodeagent/cmd/nodeagent/scraperauth"
	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
	"github.com/nodeagent/nodeagent/internal/selfsigned"
	"github.com/nodeagent/nodeagent/kubeletclient"
)

// agent is the wired serve command.
type agent struct {
	opts    *serveOptions
	logger  *slog.Logger
	scraper *collectors.Scraper
	handler http.Handler
	health  http.Handler // /healthz and /readyz only
	// selfCert is the generated serving certificate when the agent serves
	// TLS itself (--web.kubernetes-auth without a web config); nil when
	// exporter-toolkit serves.
	selfCert *tls.Certificate
	// pods is the kubelet's pod metadata; nil when the kubelet layer is off.
	pods *kubeletclient.PodSource
}

// newAgent validates options and builds every enabled collector; any
// problem is a startup error naming the flag or file.
func newAgent(opts *serveOptions, stderr io.Writer) (*agent, error) {
	opts.log.Writer = stderr
	logger := promslog.New(&opts.log)
	if err := opts.validate(); err != nil {
		return nil, err
	}
	proc, err := procfs.NewFS(opts.paths.ProcFS)
	if err != nil {
		return nil, fmt.Errorf("--path.procfs %s: %w", opts.paths.ProcFS, err)
	}
	sys, err := sysfs.NewFS(opts.paths.SysFS)
	if err != nil {
		return nil, fmt.Errorf("--path.sysfs %s: %w", opts.paths.SysFS, err)
	}

	self := prometheus.NewRegistry()
	self.MustRegister(
		versioncollector.NewCollector("nodeagent"),
		promcollectors.NewGoCollector(),
		promcollectors.NewProcessCollector(promcollectors.ProcessCollectorOpts{}),
	)
	env := collectors.Env{
		Logger:     logger,
		Paths:      opts.paths,
		Proc:       proc,
		Sys:        sys,
		Now:        time.Now,
		Registerer: self,
	}
	// One kubelet client for the whole agent: pod metadata, the
	// passthrough and the security collectors share its connections.
	var pods *kubeletclient.PodSource
	kubeletOff := ""
	kc, err := kubeletclient.New(opts.kubelet, opts.getenv, logger, self)
	switch {
	case errors.Is(err, kubeletclient.ErrNoKubelet):
		kubeletOff = err.Error()
		logger.Info("no kubelet: kubelet-layer and security collectors are off, container series carry no pod names", "reason", err)
	case err != nil:
		return nil, err
	default:
		pods = kubeletclient.NewPodSource(kc, opts.kubelet.PodsRefreshInterval, time.Now, logger)
		env.Kubelet, env.PodMetadata = kc, pods
	}
	instances, err := opts.selection.Build(env, opts.disableDefaults)
	if err != nil {
		return nil, err
	}
	scraper, err := collectors.NewScraper(instances, collectors.ScraperOptions{
		Timeout:        opts.scrapeTimeout,
		MaxConcurrency: opts.maxConcurrency,
		NoDataRecheck:  opts.noDataRecheck,
		Logger:         logger,
		Registerer:     self,
	})
	if err != nil {
		return nil, err
	}
	expo := exposition.Options{ParallelGzip: opts.parallelGzip}
	if opts.reuseUnchanged {
		expo.Reuse = exposition.NewReuse()
		for _, outcome := range []string{"spliced", "written"} {
			count := func() float64 {
				spliced, written := expo.Reuse.Counts()
				if outcome == "spliced" {
					return float64(spliced)
				}
				return float64(written)
			}
			if err := self.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name:        "nodeagent_exposition_gzip_families_total",
				Help:        "nodeagent: families of large gzip answers sent from the compressed text kept since they last changed (spliced) or written and compressed (written), --web.reuse-unchanged.",
				ConstLabels: prometheus.Labels{"outcome": outcome},
			}, count)); err != nil {
				return nil, fmt.Errorf("registering the answer's metrics: %w", err)
			}
		}
	}
	h, err := newHandler(handlerConfig{
		scraper:     scraper,
		self:        self,
		logger:      logger,
		maxRequests: opts.maxRequests,
		offset:      opts.scrapeOffset,
		expo:        expo,
		kubeletOff:  kubeletOff,
		absent:      opts.selection.Absent(),
	})
	if err != nil {
		return nil, err
	}
	a := &agent{opts: opts, logger: logger, scraper: scraper, handler: h, health: h.healthHandler(), pods: pods}
	if opts.kubeAuth.Enabled {
		if err := a.protect(h, self); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// protect puts the handler behind Kubernetes bearer-token auth and, without
// a web config, makes the self-signed serving certificate.
//
// Order of checks with a web config: exporter-toolkit verifies the client
// certificate (if it asks for one) in the TLS handshake, then this checks
// the bearer token and the scraper's RBAC: both must pass.
func (a *agent) protect(h *handler, reg prometheus.Registerer) error {
	restCfg, err := a.opts.kubeAPI.Config()
	if err != nil {
		return fmt.Errorf("--web.kubernetes-auth: %w", err)
	}
	auth, err := scraperauth.New(a.opts.kubeAuth, scraperauth.Deps{REST: restCfg, Registerer: reg, Logger: a.logger})
	if err != nil {
		return fmt.Errorf("--web.kubernetes-auth: %w", err)
	}
	a.handler = auth.Wrap(h, scraperauth.Routes{Public: []string{"/healthz", "/readyz"}, Serves: h.serves})
	a.logger.Info("scrapers authenticate with Kubernetes bearer tokens (TokenReview, SubjectAccessReview)", "api_server", restCfg.Host,
		"cache_ttl", a.opts.kubeAuth.CacheTTL, "deny_cache_ttl", a.opts.kubeAuth.DenyCacheTTL)
	if !a.opts.selfSigned() {
		return nil
	}
	cert, err := selfsigned.New(a.certNames(), time.Now())
	if err != nil {
		return err
	}
	a.selfCert = &cert
	a.logger.Info("serving TLS with a self-signed certificate generated at start (no certificate in --web.config.file)",
		"sha256_fingerprint", selfsigned.Fingerprint(cert.Leaf), "names", selfsigned.Names(cert.Leaf), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// certNames are the self-signed certificate's names: whatever a scraper
// may dial (the node's name and address from the downward API, the
// host name) and loopback.
func (a *agent) certNames() []string {
	names := []string{a.opts.getenv("NODE_IP"), a.opts.getenv("NODE_NAME")}
	if host, err := os.Hostname(); err == nil {
		names = append(names, host)
	}
	return append(names, "127.0.0.1", "::1", "localhost")
}

// serve runs the agent until ctx ends. listeners, when given (tests),
// replace --web.listen-address. With process set (the agent is the
// process, not one of a test's) it also sets the Go runtime's process-wide
// settings, which newAgent leaves alone so that tests can run agents side
// by side: heap profile sampling, and GOMAXPROCS, a number given before
// the collectors are built, as the cadvisor collector's readers follow it.
func serve(ctx context.Context, opts *serveOptions, stderr io.Writer, listeners []net.Listener, process bool) error {
	if process && !heapProfiling(opts.pprofAddress, opts.getenv("GODEBUG")) {
		runtime.MemProfileRate = 0
	}
	var quotaProcs int
	var quotaErr error
	switch {
	case process && opts.gomaxprocs > 0:
		runtime.GOMAXPROCS(opts.gomaxprocs)
	case process && opts.getenv("GOMAXPROCS") == "":
		if self, err := procfs.Self(); err != nil {
			quotaErr = err
		} else {
			quotaProcs, quotaErr = quotaGOMAXPROCS(self)
		}
	}
	a, err := newAgent(opts, stderr)
	if err != nil {
		return err
	}
	if process {
		switch {
		case quotaErr != nil:
			a.logger.Warn("reading the CPU quota of the agent's cgroup; GOMAXPROCS left as Go chose it", "value", runtime.GOMAXPROCS(0), "err", quotaErr)
		case quotaProcs > 0:
			a.logger.Info("GOMAXPROCS set", "value", quotaProcs, "why", "the CPU quota of the agent's cgroup, rounded down: threads beyond it spend the quota waking each other (--gomaxprocs sets another)")
		}
		if opts.gomaxprocs > 0 {
			a.logger.Info("GOMAXPROCS set", "value", opts.gomaxprocs, "why", "--gomaxprocs")
		} else if n := autoGOMAXPROCS(opts.getenv("GOMAXPROCS"), a.scraper.Instances()); n > 0 && n != runtime.GOMAXPROCS(0) {
			runtime.GOMAXPROCS(n)
			a.logger.Info("GOMAXPROCS set", "value", n, "why", "the cadvisor collector is off: one thread serves the rest with less CPU (--gomaxprocs sets another)")
		}
	}
	if process && opts.releasePages {
		a.handler = releaseAfterFirstAnswer(a.handler, a.logger)
	}
	return a.run(ctx, listeners)
}

// autoGOMAXPROCS is what --gomaxprocs=0 sets, given the GOMAXPROCS
// environment variable env and the enabled collectors: 1 without the
// cadvisor collector, the only one whose work a second thread speeds up
// (it reads cgroups on a goroutine per CPU); 0, leaving Go's own, with it
// or when the environment says. A host scrape on one thread takes the same
// wall time and a third less CPU (docs/performance.md): no Ps to wake and
// put back to sleep, no preemption signals while the GC scans stacks.
func autoGOMAXPROCS(env string, instances []collectors.Instance) int {
	if env != "" {
		return 0
	}
	for _, in := range instances {
		if in.Name == "cadvisor" {
			return 0
		}
	}
	return 1
}

// heapProfiling reports whether the Go runtime should keep sampling
// allocations for a heap profile, given --debug.pprof-address and the
// GODEBUG environment variable: only when pprof is served, or when GODEBUG
// sets memprofilerate itself. Nothing can read the profile otherwise, and
// keeping it is not free: its table of stacks alone is 1.4 MiB of address
// space the runtime fills in as it samples, which made up 0.5–1 MiB of the
// host layer's resident memory and up to 2 MiB at 1,000 containers
// (docs/performance.md).
func heapProfiling(pprofAddress, godebug string) bool {
	if pprofAddress != "" {
		return true
	}
	for _, kv := range strings.Split(godebug, ",") {
		if strings.HasPrefix(strings.TrimSpace(kv), "memprofilerate=") {
			return true
		}
	}
	return false
}

func (a *agent) run(ctx context.Context, listeners []net.Listener) error {
	a.logger.Info("starting nodeagent", "version", version.Info(), "build_context", version.BuildContext())
	var names []string
	for _, in := range a.scraper.Instances() {
		names = append(names, in.Name)
	}
	a.logger.Info("enabled collectors", "collectors", names)

	server := &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: 10 * time.Second,
		// No WriteTimeout: a response is bounded by the scrape deadline.
		// TLS handshake failures go to debug: load-balancer probes and port
		// scanners would flood the log otherwise.
		ErrorLog: slog.NewLogLogger(a.logger.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 3)
	go func() {
		switch {
		case a.selfCert != nil:
			errc <- a.serveSelfSigned(server, listeners)
		case listeners != nil:
			errc <- web.ServeMultiple(listeners, server, a.opts.web, a.logger)
		default:
			errc <- web.ListenAndServe(server, a.opts.web, a.logger)
		}
	}()

	// Side servers: pprof (loopback only) and the plain health endpoint.
	var side []*http.Server
	startSide := func(flag, addr string, srv *http.Server) error {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("%s %s: %w", flag, addr, err)
		}
		a.logger.Info("listening", "flag", flag, "address", l.Addr().String())
		side = append(side, srv)
		go func() { errc <- srv.Serve(l) }()
		return nil
	}
	closeAll := func() {
		_ = server.Close()
		for _, srv := range side {
			_ = srv.Close()
		}
	}
	if a.opts.pprofAddress != "" {
		a.logger.Warn("pprof is enabled", "address", a.opts.pprofAddress)
		if err := startSide("--debug.pprof-address", a.opts.pprofAddress, newPprofServer()); err != nil {
			closeAll()
			return err
		}
	}
	if a.opts.healthAddress != "" {
		srv := &http.Server{Handler: a.health, ReadHeaderTimeout: 10 * time.Second}
		if err := startSide("--web.health-address", a.opts.healthAddress, srv); err != nil {
			closeAll()
			return err
		}
	}

	// A first collection of every enabled collector, so /readyz turns ready
	// and slow first reads (pod metadata, kubelet checks) happen before the
	// first scrape rather than in it. Pod metadata comes first, so that the
	// first container series already carry pod names.
	go func() {
		if a.pods != nil {
			first, cancel := context.WithTimeout(ctx, a.scraper.Timeout())
			a.pods.WaitFirst(first)
			cancel()
		}
		_, _ = a.scraper.GatherResult(time.Now().Add(a.scraper.Timeout()), names)
		a.logger.Info("first collection done; ready")
	}()

	select {
	case err := <-errc:
		closeAll()
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	a.logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), a.opts.scrapeTimeout+time.Second)
	defer cancel()
	for _, srv := range side {
		_ = srv.Shutdown(shutdownCtx)
	}
	if err := server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// serveSelfSigned serves TLS with the generated certificate on listeners,
// or on those of --web.listen-address or --web.systemd-socket.
// exporter-toolkit serves TLS only from a web-config file, and this
// certificate exists only in memory, so crypto/tls serves it directly; the
// toolkit's TLS defaults are kept (TLS 1.2 at least, HTTP/2).
func (a *agent) serveSelfSigned(server *http.Server, listeners []net.Listener) error {
	if listeners == nil {
		var err error
		if listeners, err = a.listen(); err != nil {
			return err
		}
	}
	server.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*a.selfCert}}
	var g errgroup.Group
	for _, l := range listeners {
		a.logger.Info("listening", "address", l.Addr().String(), "tls", "self-signed")
		g.Go(func() error { return server.ServeTLS(l, "", "") })
	}
	return g.Wait()
}

// listen opens the listeners of --web.systemd-socket or
// --web.listen-address (TCP only: validate refuses vsock here).
func (a *agent) listen() ([]net.Listener, error) {
	if *a.opts.web.WebSystemdSocket {
		ls, err := activation.Listeners()
		if err != nil {
			return nil, fmt.Errorf("--web.systemd-socket: %w", err)
		}
		if len(ls) == 0 {
			return nil, errors.New("--web.systemd-socket: no socket passed by systemd")
		}
		return ls, nil
	}
	var ls []net.Listener
	for _, addr := range *a.opts.web.WebListenAddresses {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, open := range ls {
				_ = open.Close()
			}
			return nil, fmt.Errorf("--web.listen-address %s: %w", addr, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

func newPprofServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
}
