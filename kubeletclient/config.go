package kubeletclient

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
)

// The in-cluster service-account files every pod gets unless
// automountServiceAccountToken is off.
const (
	DefaultTokenFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
	DefaultCAFile    = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"
)

// kubeletPort is the kubelet's authenticated port when the address comes
// from NODE_IP or NODE_NAME.
const kubeletPort = "10250"

// Config is the kubelet client's settings: one set for the whole agent,
// shared by pod metadata, the passthrough and the security collectors.
type Config struct {
	// URL is the base URL of the kubelet's authenticated port
	// (https://10.0.0.5:10250). Empty: from NODE_IP or NODE_NAME.
	URL string
	// TokenFile is a bearer token file, re-read when it rotates. Empty: no
	// token.
	TokenFile string
	// ClientCertFile and ClientKeyFile are a client certificate and its key.
	ClientCertFile, ClientKeyFile string
	// CAFile holds the CAs that verify the kubelet's serving certificate.
	// Empty: the system's trusted CAs.
	CAFile string
	// InsecureSkipVerify turns TLS verification of the kubelet off.
	InsecureSkipVerify bool
	// ReadOnlyPort is the port the read-only check probes.
	ReadOnlyPort int
	// ReadOnlyPortTimeout bounds each request of the read-only check.
	ReadOnlyPortTimeout time.Duration
	// Timeout bounds every request to the authenticated port.
	Timeout time.Duration
	// MaxBodySize caps every response body, in bytes.
	MaxBodySize units.Base2Bytes
	// PodsRefreshInterval is how old pod metadata may get before a scrape
	// asks for a refresh.
	PodsRefreshInterval time.Duration
	// SecurityCheckInterval is how often the security checks run again.
	SecurityCheckInterval time.Duration

	// Whether the file flags were given on the command line: a missing
	// default file means "not in a pod", a missing given file is an error.
	tokenFileSet, caFileSet bool
}

// AddFlags registers the --kubelet.* flags on app, writing into c.
func (c *Config) AddFlags(app *kingpin.Application) {
	app.Flag("kubelet.url", "Base URL of the kubelet's authenticated port, for example https://10.0.0.5:10250. Default: https://$NODE_IP:10250, else https://$NODE_NAME:10250 (set them from the downward API); without any of them the kubelet layer is off.").
		Default("").StringVar(&c.URL)
	app.Flag("kubelet.token-file", "Bearer token file for the kubelet (re-read when it rotates). The default is the pod's service-account token; empty for no token.").
		Default(DefaultTokenFile).IsSetByUser(&c.tokenFileSet).StringVar(&c.TokenFile)
	app.Flag("kubelet.client-cert-file", "Client certificate for the kubelet (x509 authentication), with --kubelet.client-key-file.").
		Default("").StringVar(&c.ClientCertFile)
	app.Flag("kubelet.client-key-file", "Key of --kubelet.client-cert-file.").
		Default("").StringVar(&c.ClientKeyFile)
	app.Flag("kubelet.ca-file", "CA certificates that verify the kubelet's serving certificate. The default is the cluster CA of the pod's service account; empty for the system's trusted CAs.").
		Default(DefaultCAFile).IsSetByUser(&c.caFileSet).StringVar(&c.CAFile)
	app.Flag("kubelet.insecure-skip-verify", "Do not verify the kubelet's serving certificate (logs a warning and sets nodeagent_kubelet_tls_verified 0).").
		Default("false").BoolVar(&c.InsecureSkipVerify)
	app.Flag("kubelet.readonly-port", "The kubelet's unauthenticated read-only port, which the kubelet_readonly_port check probes on the kubelet's host.").
		Default("10255").IntVar(&c.ReadOnlyPort)
	app.Flag("kubelet.readonly-port-timeout", "Timeout of each request of the read-only port check; no answer in time reports the port's state as unknown.").
		Default("2s").DurationVar(&c.ReadOnlyPortTimeout)
	app.Flag("kubelet.timeout", "Timeout of every request to the kubelet's authenticated port (a scrape's own deadline may cut it shorter).").
		Default("10s").DurationVar(&c.Timeout)
	app.Flag("kubelet.max-body-size", "Largest response body accepted from the kubelet; larger ones are refused.").
		Default("32MiB").BytesVar(&c.MaxBodySize)
	app.Flag("kubelet.pods-refresh-interval", "How old the pod metadata from the kubelet's /pods may get before a scrape triggers a refresh (an unknown pod or container triggers one sooner).").
		Default("15s").DurationVar(&c.PodsRefreshInterval)
	app.Flag("kubelet.security-check-interval", "How often the read-only port and anonymous-auth checks run again; results are cached in between.").
		Default("5m").DurationVar(&c.SecurityCheckInterval)
}

// Validate returns every conflict between the settings at once.
func (c *Config) Validate() error {
	var errs []error
	if c.URL != "" {
		if _, err := parseKubeletURL(c.URL); err != nil {
			errs = append(errs, fmt.Errorf("--kubelet.url: %w", err))
		}
	}
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		errs = append(errs, errors.New("--kubelet.client-cert-file and --kubelet.client-key-file go together; give both or neither"))
	}
	if c.ClientCertFile != "" && c.tokenFileSet && c.TokenFile != "" {
		errs = append(errs, errors.New("--kubelet.token-file and --kubelet.client-cert-file are two ways to authenticate; give one"))
	}
	if c.InsecureSkipVerify && c.caFileSet && c.CAFile != "" {
		errs = append(errs, errors.New("--kubelet.ca-file and --kubelet.insecure-skip-verify contradict each other; give one"))
	}
	if c.ReadOnlyPort < 1 || c.ReadOnlyPort > 65535 {
		errs = append(errs, fmt.Errorf("--kubelet.readonly-port must be a port number, got %d (disable the check with --no-collector.kubelet_readonly_port)", c.ReadOnlyPort))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--kubelet.readonly-port-timeout", c.ReadOnlyPortTimeout},
		{"--kubelet.timeout", c.Timeout},
		{"--kubelet.pods-refresh-interval", c.PodsRefreshInterval},
		{"--kubelet.security-check-interval", c.SecurityCheckInterval},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", d.flag, d.v))
		}
	}
	if c.MaxBodySize <= 0 {
		errs = append(errs, fmt.Errorf("--kubelet.max-body-size must be positive, got %s", c.MaxBodySize))
	}
	return errors.Join(errs...)
}

// ErrNoKubelet says no kubelet address is known: the kubelet layer is off.
var ErrNoKubelet = errors.New("the kubelet layer is off")

// target is where the kubelet is and how that was found out.
type target struct {
	base *url.URL // the authenticated port
	from string   // "--kubelet.url", "NODE_IP" or "NODE_NAME"
}

// resolve finds the kubelet: --kubelet.url, else NODE_IP, else NODE_NAME
// from the environment (the downward API's status.hostIP and spec.nodeName).
// Without any of them it returns an error wrapping ErrNoKubelet that says
// how to turn the layer on.
func (c *Config) resolve(getenv func(string) string) (target, error) {
	if c.URL != "" {
		u, err := parseKubeletURL(c.URL)
		if err != nil {
			return target{}, fmt.Errorf("--kubelet.url: %w", err)
		}
		return target{base: u, from: "--kubelet.url"}, nil
	}
	for _, name := range []string{"NODE_IP", "NODE_NAME"} {
		if host := getenv(name); host != "" {
			u, err := parseKubeletURL("https://" + net.JoinHostPort(host, kubeletPort))
			if err != nil {
				return target{}, fmt.Errorf("%s=%q: %w", name, host, err)
			}
			return target{base: u, from: name}, nil
		}
	}
	return target{}, fmt.Errorf("%w: no --kubelet.url, and neither NODE_IP nor NODE_NAME is set in the environment "+
		"(on a Kubernetes node set NODE_IP from the downward API's status.hostIP; for a kubelet on this host give --kubelet.url=https://127.0.0.1:10250)", ErrNoKubelet)
}

func parseKubeletURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("%q: the kubelet's authenticated port speaks https (the plain-http read-only port is only ever probed, never used)", s)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q has no host", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q has an invalid port", s)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: a base URL takes no query or fragment", s)
	}
	return u, nil
}
