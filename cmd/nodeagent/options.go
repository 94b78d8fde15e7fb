package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"
	"sigs.k8s.io/yaml"

	"github.com/nodeagent/nodeagent/cmd/nodeagent/scraperauth"
	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/kubeapi"
	"github.com/nodeagent/nodeagent/kubeletclient"
)

// defaultListenAddress is registered in docs/ports.md: 9812 collides with
// none of node_exporter (9100), cAdvisor (8080), the kubelet (10248, 10250,
// 10255), kube-proxy (10249, 10256), Calico (9091, 9099) or Cilium (9962-9965).
const defaultListenAddress = ":9812"

// serveOptions are the serve command's settings, filled by kingpin.
type serveOptions struct {
	web             *web.FlagConfig
	log             promslog.Config
	paths           collectors.Paths
	scrapeTimeout   time.Duration
	scrapeOffset    time.Duration
	maxConcurrency  int
	noDataRecheck   time.Duration
	maxRequests     int
	disableDefaults bool
	pprofAddress    string
	healthAddress   string
	gomaxprocs      int
	releasePages    bool
	parallelGzip    bool
	reuseUnchanged  bool
	selection       *collectors.Selection
	kubelet         kubeletclient.Config
	kubeAuth        scraperauth.Config
	kubeAPI         kubeapi.Options
	// getenv reads the downward API's NODE_IP and NODE_NAME; tests replace it.
	getenv func(string) string
}

func addServeFlags(app *kingpin.Application) *serveOptions {
	o := &serveOptions{}
	o.web = kingpinflag.AddFlags(app, defaultListenAddress)
	promslogflag.AddFlags(app, &o.log)

	app.Flag("path.procfs", "procfs mountpoint.").Default("/proc").StringVar(&o.paths.ProcFS)
	app.Flag("path.sysfs", "sysfs mountpoint.").Default("/sys").StringVar(&o.paths.SysFS)
	app.Flag("path.rootfs", "rootfs mountpoint.").Default("/").StringVar(&o.paths.RootFS)
	app.Flag("path.udev.data", "udev data path.").Default("/run/udev/data").StringVar(&o.paths.UdevData)
	app.Flag("path.cgroupfs", "cgroup v2 mountpoint.").Default("/sys/fs/cgroup").StringVar(&o.paths.CgroupFS)

	app.Flag("scrape.timeout", "Deadline for each collector in a scrape; a collector past it is reported failed and its output dropped. Keep it below Prometheus' scrape_timeout.").
		Default("5s").DurationVar(&o.scrapeTimeout)
	app.Flag("scrape.timeout-offset", "Subtracted from the X-Prometheus-Scrape-Timeout-Seconds header, when present, to leave time to send the response.").
		Default("500ms").DurationVar(&o.scrapeOffset)
	app.Flag("scrape.max-concurrency", "How many collectors may run at once.").
		Default("8").IntVar(&o.maxConcurrency)
	app.Flag("scrape.no-data-recheck", "A host collector that found nothing to report (the subsystem it reads is absent: ZFS, bonding, InfiniBand, hwmon…) is run again only this long after; a subsystem that appears (a module loaded) is served within it. 0 runs every collector every scrape.").
		Default("1m").DurationVar(&o.noDataRecheck)
	app.Flag("web.max-requests", "Maximum number of parallel scrape requests. 0 disables the limit.").
		Default("40").IntVar(&o.maxRequests)
	app.Flag("web.parallel-gzip", "Write and compress a gzip answer of more than ~2 MB of text (the container layer's from ~250 containers) in chunks on all of Go's threads, into one gzip member: at 1,000 containers a scrape takes a quarter less time for the same CPU, and 5-6 MiB more memory. Only when --gomaxprocs (or Go's own choice) is 2 or more: not under the DaemonSet's or the unit's CPU limit. --no-web.parallel-gzip: every answer is written on one thread.").
		Default("true").BoolVar(&o.parallelGzip)
	app.Flag("web.reuse-unchanged", "In a gzip answer of more than ~2 MB of text, send the compressed text of a container-layer family whose series are the same as in the two answers before it (limits, start times, idle containers' counters) instead of writing and compressing it again: less CPU for 1-2 % more bytes sent. nodeagent_exposition_gzip_families_total counts the families spliced and written.").
		Default("true").BoolVar(&o.reuseUnchanged)
	app.Flag("collector.disable-defaults", "Disable all collectors that are not enabled explicitly with --collector.<name>.").
		Default("false").BoolVar(&o.disableDefaults)
	app.Flag("web.health-address", "Also serve /healthz and /readyz, without TLS or authentication, on this address (for kubelet probes when --web.config.file requires client certificates or passwords). Off when empty.").
		Default("").StringVar(&o.healthAddress)
	app.Flag("debug.pprof-address", "Serve Go pprof on this loopback address (for example 127.0.0.1:6060). Off when empty.").
		Default("").StringVar(&o.pprofAddress)
	app.Flag("gomaxprocs", "How many threads run Go code at once (GOMAXPROCS). 0: the GOMAXPROCS environment variable when set; otherwise 1 when the cadvisor collector is off, as node_exporter runs by default (a host scrape is a few milliseconds of system calls, which a second thread only adds scheduling to), and when it is on, as it reads cgroups in parallel, the CPUs the process may use, or under a CPU quota (a container's CPU limit, a unit's CPUQuota=) the CPUs the quota grants, rounded down, at least 1 (Go rounds up, to at least 2).").
		Default("0").IntVar(&o.gomaxprocs)
	app.Flag("release-startup-pages", "After the first request answered, unmap the executable's read-only pages (madvise MADV_DONTNEED; a mapping with pages copied on write, such as a uprobe's breakpoint, is left alone): start-up reads several MB of code and data that no scrape needs again, which would otherwise stay resident. What later requests use is mapped back from the page cache at its first use. --no-release-startup-pages keeps them mapped.").
		Default("true").BoolVar(&o.releasePages)

	o.kubelet.AddFlags(app)
	o.kubeAuth.AddFlags(app)
	o.kubeAPI.AddFlags(app)
	o.getenv = os.Getenv

	o.selection = collectors.AddFlags(app, collectors.Registrations())
	return o
}

// validate returns every problem with the options at once.
func (o *serveOptions) validate() error {
	var errs []error
	if o.scrapeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--scrape.timeout must be positive, got %s", o.scrapeTimeout))
	}
	if o.scrapeOffset < 0 {
		errs = append(errs, fmt.Errorf("--scrape.timeout-offset must not be negative, got %s", o.scrapeOffset))
	}
	if o.maxConcurrency <= 0 {
		errs = append(errs, fmt.Errorf("--scrape.max-concurrency must be positive, got %d", o.maxConcurrency))
	}
	if o.noDataRecheck < 0 {
		errs = append(errs, fmt.Errorf("--scrape.no-data-recheck must not be negative, got %s", o.noDataRecheck))
	}
	if o.gomaxprocs < 0 {
		errs = append(errs, fmt.Errorf("--gomaxprocs must not be negative, got %d", o.gomaxprocs))
	}
	if o.maxRequests < 0 {
		errs = append(errs, fmt.Errorf("--web.max-requests must not be negative, got %d", o.maxRequests))
	}
	if o.pprofAddress != "" {
		if err := checkLoopback(o.pprofAddress); err != nil {
			errs = append(errs, fmt.Errorf("--debug.pprof-address: %w", err))
		}
	}
	if err := o.kubelet.Validate(); err != nil {
		errs = append(errs, err)
	}
	webConfigOK := true
	if f := *o.web.WebConfigFile; f != "" {
		// exporter-toolkit reads the file again per connection, which is what
		// makes certificate rotation work; this check only makes a broken
		// file a startup error instead of a failure at the first scrape.
		if err := web.Validate(f); err != nil {
			errs = append(errs, fmt.Errorf("--web.config.file %s: %w", f, err))
			webConfigOK = false
		}
	}
	if o.kubeAuth.Enabled {
		if err := o.kubeAuth.Validate(); err != nil {
			errs = append(errs, err)
		}
		if webConfigOK {
			errs = append(errs, o.checkKubeAuthTLS()...)
		}
	}
	return errors.Join(errs...)
}

// selfSigned says whether the agent serves TLS itself with a generated
// certificate: Kubernetes auth on and no web config (validate has made
// sure that a web config given with it has a certificate).
func (o *serveOptions) selfSigned() bool {
	return o.kubeAuth.Enabled && *o.web.WebConfigFile == ""
}

// checkKubeAuthTLS makes sure that with --web.kubernetes-auth no listener
// would take bearer tokens over plain HTTP: a web config must configure a
// certificate (exporter-toolkit serves plain HTTP otherwise); without one
// the agent serves TLS itself with a self-signed certificate, on TCP
// addresses or systemd sockets.
func (o *serveOptions) checkKubeAuthTLS() []error {
	var errs []error
	if f := *o.web.WebConfigFile; f != "" {
		wc, err := readWebConfig(f)
		if err != nil {
			return []error{err}
		}
		if wc.TLS.CertFile == "" && wc.TLS.Cert == "" {
			errs = append(errs, fmt.Errorf("--web.kubernetes-auth needs TLS, but --web.config.file %s configures no certificate (tls_server_config cert_file or cert), so it would be served over plain HTTP: add a certificate, or give no web config for a self-signed one", f))
		}
		if len(wc.Users) > 0 {
			errs = append(errs, fmt.Errorf("--web.kubernetes-auth and the basic_auth_users of --web.config.file %s both need the Authorization header; use one", f))
		}
		return errs
	}
	if !*o.web.WebSystemdSocket {
		for _, addr := range *o.web.WebListenAddresses {
			if strings.HasPrefix(addr, "vsock://") {
				errs = append(errs, fmt.Errorf("--web.listen-address %s: vsock listeners with --web.kubernetes-auth need a certificate in --web.config.file (the self-signed mode serves TCP and systemd sockets)", addr))
			}
		}
	}
	return errs
}

// webConfigAuth is the part of exporter-toolkit's web config that decides
// how Kubernetes auth can be served (the toolkit has validated the file).
type webConfigAuth struct {
	TLS struct {
		Cert           string `json:"cert"`
		CertFile       string `json:"cert_file"`
		ClientAuthType string `json:"client_auth_type"` // doctor: can it read the agent
	} `json:"tls_server_config"`
	Users map[string]string `json:"basic_auth_users"`
}

func readWebConfig(path string) (webConfigAuth, error) {
	var wc webConfigAuth
	b, err := os.ReadFile(path)
	if err != nil {
		return wc, fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	if err := yaml.Unmarshal(b, &wc); err != nil {
		return wc, fmt.Errorf("--web.config.file %s: %w", path, err)
	}
	return wc, nil
}

// checkLoopback accepts host:port addresses whose host is a loopback IP or
// "localhost": profiling data must not leave the node.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q is not a loopback address; pprof is served on loopback only", addr)
	}
	return nil
}
