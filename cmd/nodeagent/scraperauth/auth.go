// Package scraperauth authenticates and authorises scrapers the Kubernetes
// way, as kube-rbac-proxy does in a sidecar: the request's bearer token
// (Prometheus' service-account token) is validated with a TokenReview and
// the request authorised with a SubjectAccessReview of verb get on its path
// as a non-resource URL, so a ClusterRole rule {nonResourceURLs:
// ["/metrics", "/metrics/*"], verbs: ["get"]} is what lets a scraper in.
//
// Answers are cached briefly (allowed and denied apart, bounded, keyed by a
// hash of the token: tokens are never kept or logged in clear) and
// concurrent identical checks share one review. When the API server cannot
// answer and the cache has nothing, the request gets 503: never an open
// door, and not a 401 that would pass for a bad token.
package scraperauth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/rest"
)

// Deps are what an Authenticator is built with besides its Config.
type Deps struct {
	// REST reaches the API server as nodeagent (internal/kubeapi builds it).
	REST       *rest.Config
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Now is the caches' clock; nil means time.Now.
	Now func() time.Time
}

// Authenticator checks requests; one is shared by every listener.
type Authenticator struct {
	cfg     Config
	rev     *reviewer
	logger  *slog.Logger
	metrics *metrics
	// Allowed and denied answers live in separate caches, so that a flood
	// of garbage tokens or paths evicts only other garbage. The caches are
	// apimachinery's LRUExpireCache, what the API server's own webhook
	// authenticator and authorizer cache with: bounded, least recently used
	// out first, a TTL per entry.
	tokens, badTokens     *cache.LRUExpireCache
	allowed, denied       *cache.LRUExpireCache
	inflight              singleflight.Group
	tokenTTL, denyToken   time.Duration
	allowedTTL, deniedTTL time.Duration
}

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// New builds an Authenticator; it talks to the API server only when
// requests come.
func New(cfg Config, d Deps) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rev, err := newReviewer(d.REST)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	clock := clockFunc(now)
	return &Authenticator{
		cfg:        cfg,
		rev:        rev,
		logger:     d.Logger,
		metrics:    m,
		tokens:     cache.NewLRUExpireCacheWithClock(cfg.CacheSize, clock),
		badTokens:  cache.NewLRUExpireCacheWithClock(cfg.CacheSize, clock),
		allowed:    cache.NewLRUExpireCacheWithClock(cfg.CacheSize, clock),
		denied:     cache.NewLRUExpireCacheWithClock(cfg.CacheSize, clock),
		tokenTTL:   cfg.CacheTTL,
		denyToken:  cfg.DenyCacheTTL,
		allowedTTL: cfg.CacheTTL,
		deniedTTL:  cfg.DenyCacheTTL,
	}, nil
}

// Routes tells Wrap which requests pass without a token and which paths
// exist.
type Routes struct {
	// Public paths are served to anyone (/healthz, /readyz).
	Public []string
	// Serves says whether the wrapped handler has a route for r. A request
	// with an authenticated token for a path it does not serve goes on to
	// get its 404 without a SubjectAccessReview, so that made-up paths
	// cost the API server nothing. Nil: every path is checked.
	Serves func(r *http.Request) bool
}

// Wrap returns next behind the token check.
func (a *Authenticator) Wrap(next http.Handler, routes Routes) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(routes.Public, r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		if r.TLS == nil {
			// nodeagent never serves plain HTTP with this on (cmd/nodeagent
			// refuses such a configuration); this only makes sure.
			a.metrics.requests.WithLabelValues(resultDenied).Inc()
			http.Error(w, "forbidden: bearer tokens are accepted over TLS only", http.StatusForbidden)
			return
		}
		token, ok := bearerToken(r)
		if !ok {
			a.metrics.requests.WithLabelValues(resultUnauthenticated).Inc()
			w.Header().Set("WWW-Authenticate", `Bearer realm="nodeagent"`)
			http.Error(w, "unauthorized: no bearer token (send Authorization: Bearer <token>, for example Prometheus' service-account token)", http.StatusUnauthorized)
			return
		}
		id, ok, err := a.authenticate(r.Context(), token)
		switch {
		case err != nil:
			a.unavailable(w, r, "check the bearer token", err)
			return
		case !ok:
			a.metrics.requests.WithLabelValues(resultUnauthenticated).Inc()
			a.logger.Debug("bearer token not authenticated by the Kubernetes API server", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="nodeagent", error="invalid_token"`)
			http.Error(w, "unauthorized: the Kubernetes API server does not authenticate this bearer token", http.StatusUnauthorized)
			return
		}
		if routes.Serves != nil && !routes.Serves(r) {
			a.metrics.requests.WithLabelValues(resultNotFound).Inc()
			next.ServeHTTP(w, r)
			return
		}
		dec, err := a.authorize(r.Context(), id, r.URL.Path)
		switch {
		case err != nil:
			a.unavailable(w, r, "authorise the request", err)
			return
		case !dec.allowed:
			a.metrics.requests.WithLabelValues(resultDenied).Inc()
			msg := forbiddenMessage(id.User, r.URL.Path)
			a.logger.Warn("scrape denied by Kubernetes RBAC", "user", id.User, "path", r.URL.Path, "reason", dec.reason, "fix", msg)
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		a.metrics.requests.WithLabelValues(resultAllowed).Inc()
		next.ServeHTTP(w, r)
	})
}

// forbiddenMessage names the missing permission and the rule that grants it.
func forbiddenMessage(user, path string) string {
	return fmt.Sprintf("forbidden: user %q may not get nonResourceURL %q; grant it with a ClusterRole rule {nonResourceURLs: [%q], verbs: [\"get\"]}", user, path, path)
}

func (a *Authenticator) unavailable(w http.ResponseWriter, r *http.Request, what string, err error) {
	a.metrics.requests.WithLabelValues(resultError).Inc()
	a.logger.Warn("cannot "+what+": answering 503", "path", r.URL.Path, "err", err)
	http.Error(w, "service unavailable: cannot "+what+" with the Kubernetes API server; see nodeagent's log", http.StatusServiceUnavailable)
}

// bearerToken reads "Authorization: Bearer <token>" (the scheme is case
// insensitive, RFC 7235).
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// tokenKey is how a token is known to the caches and to singleflight: its
// SHA-256, so that no cache holds a usable credential.
type tokenKey [sha256.Size]byte

// accessKey identifies a SubjectAccessReview: the hash of the whole
// identity (user, uid, groups, extra: two tokens of one user name with
// other groups may have other rights) and the path.
type accessKey [sha256.Size]byte

// authenticate returns the token's identity, from the cache or a
// TokenReview.
func (a *Authenticator) authenticate(ctx context.Context, token string) (identity, bool, error) {
	key := tokenKey(sha256.Sum256([]byte(token)))
	lookup := func() (identity, bool, bool) {
		if v, ok := a.tokens.Get(key); ok {
			return v.(identity), true, true
		}
		if _, ok := a.badTokens.Get(key); ok {
			return identity{}, false, true
		}
		return identity{}, false, false
	}
	if id, ok, hit := lookup(); hit {
		a.metrics.cacheHits.WithLabelValues(reviewToken).Inc()
		return id, ok, nil
	}
	type answer struct {
		id identity
		ok bool
	}
	v, err := a.once(ctx, "t"+string(key[:]), func(ctx context.Context) (any, error) {
		if id, ok, hit := lookup(); hit { // answered while this call queued
			return answer{id, ok}, nil
		}
		id, ok, err := a.rev.reviewToken(ctx, token)
		a.countReview(reviewToken, err)
		switch {
		case err != nil:
			return nil, err // no answer is not remembered
		case ok:
			a.tokens.Add(key, id, a.tokenTTL)
		default:
			a.badTokens.Add(key, struct{}{}, a.denyToken)
		}
		return answer{id, ok}, nil
	})
	if err != nil {
		return identity{}, false, err
	}
	ans := v.(answer)
	return ans.id, ans.ok, nil
}

// authorize returns whether id may get path, from the cache or a
// SubjectAccessReview.
func (a *Authenticator) authorize(ctx context.Context, id identity, path string) (decision, error) {
	b, err := json.Marshal(struct {
		ID   identity `json:"id"`
		Path string   `json:"path"`
	}{id, path}) // encoding/json sorts map keys: one identity, one key
	if err != nil {
		return decision{}, fmt.Errorf("%w: encoding the access cache key: %w", ErrReview, err)
	}
	key := accessKey(sha256.Sum256(b))
	lookup := func() (decision, bool) {
		if v, ok := a.allowed.Get(key); ok {
			return v.(decision), true
		}
		if v, ok := a.denied.Get(key); ok {
			return v.(decision), true
		}
		return decision{}, false
	}
	if dec, hit := lookup(); hit {
		a.metrics.cacheHits.WithLabelValues(reviewAccess).Inc()
		return dec, nil
	}
	v, err := a.once(ctx, "a"+string(key[:]), func(ctx context.Context) (any, error) {
		if dec, hit := lookup(); hit {
			return dec, nil
		}
		dec, err := a.rev.reviewAccess(ctx, id, path)
		a.countReview(reviewAccess, err)
		switch {
		case err != nil:
			return nil, err
		case dec.allowed:
			a.allowed.Add(key, dec, a.allowedTTL)
		default:
			a.denied.Add(key, dec, a.deniedTTL)
		}
		return dec, nil
	})
	if err != nil {
		return decision{}, err
	}
	return v.(decision), nil
}

func (a *Authenticator) countReview(kind string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	a.metrics.reviews.WithLabelValues(kind, result).Inc()
}

// once runs fn for key unless a call for key is already under way, in
// which case it waits for that call's answer: concurrent scrapes with one
// token send one review. fn runs under its own timeout, detached from the
// request that started it, so that one scraper hanging up does not fail
// the others waiting on the same answer; a waiting request still stops
// waiting when its own context ends.
func (a *Authenticator) once(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	ch := a.inflight.DoChan(key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.Timeout)
		defer cancel()
		return fn(rctx)
	})
	select {
	case res := <-ch:
		return res.Val, res.Err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: the request ended while waiting for the review: %w", ErrReview, context.Cause(ctx))
	}
}
