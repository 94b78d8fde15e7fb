package scraperauth

import (
	"errors"
	"fmt"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// Config is the scraper authentication's settings.
type Config struct {
	// Enabled turns the authentication on (--web.kubernetes-auth).
	Enabled bool
	// CacheTTL is how long an authenticated token and an allowed request
	// are remembered; DenyCacheTTL the same for a rejected token and a
	// denied request. kube-rbac-proxy remembers tokens for 2 minutes,
	// allowed requests for 5 and denied ones for 30 seconds; one positive
	// TTL of 2 minutes keeps a revoked grant or a deleted service account
	// working no longer than a revoked token.
	CacheTTL, DenyCacheTTL time.Duration
	// CacheSize bounds each of the four caches (authenticated tokens,
	// rejected tokens, allowed and denied requests) in entries.
	CacheSize int
	// Timeout bounds each TokenReview and SubjectAccessReview.
	Timeout time.Duration
}

// AddFlags registers --web.kubernetes-auth and its settings on app, writing
// into c.
func (c *Config) AddFlags(app *kingpin.Application) {
	app.Flag("web.kubernetes-auth", "Require a Kubernetes bearer token on every path but /healthz and /readyz: validated with a TokenReview, authorised with a SubjectAccessReview (verb get on the request's path as a non-resource URL), as kube-rbac-proxy does. Needs TLS: without a certificate in --web.config.file, a self-signed one is generated at start.").
		Default("false").BoolVar(&c.Enabled)
	app.Flag("web.kubernetes-auth.cache-ttl", "How long an authenticated token and an allowed request are remembered.").
		Default("2m").DurationVar(&c.CacheTTL)
	app.Flag("web.kubernetes-auth.deny-cache-ttl", "How long a rejected token and a denied request are remembered.").
		Default("30s").DurationVar(&c.DenyCacheTTL)
	app.Flag("web.kubernetes-auth.cache-size", "Entries in each of the token and request caches (allowed and denied kept apart); the least recently used entry goes first.").
		Default("1024").IntVar(&c.CacheSize)
	app.Flag("web.kubernetes-auth.timeout", "Timeout of each TokenReview and SubjectAccessReview; a request whose review does not answer in time gets 503.").
		Default("5s").DurationVar(&c.Timeout)
}

// Validate returns every problem with the settings at once.
func (c *Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--web.kubernetes-auth.cache-ttl", c.CacheTTL},
		{"--web.kubernetes-auth.deny-cache-ttl", c.DenyCacheTTL},
		{"--web.kubernetes-auth.timeout", c.Timeout},
	} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %s", d.flag, d.v))
		}
	}
	if c.CacheSize <= 0 {
		errs = append(errs, fmt.Errorf("--web.kubernetes-auth.cache-size must be positive, got %d", c.CacheSize))
	}
	return errors.Join(errs...)
}
