package scraperauth

import "github.com/prometheus/client_golang/prometheus"

// Results of a request, the values of the result label.
const (
	resultAllowed         = "allowed"
	resultUnauthenticated = "unauthenticated"
	resultDenied          = "denied"
	resultError           = "error"
	// resultNotFound: authenticated, for a path nodeagent does not serve;
	// answered 404 without a SubjectAccessReview.
	resultNotFound = "not_found"
)

// Review kinds, the values of the review label.
const (
	reviewToken  = "tokenreview"
	reviewAccess = "subjectaccessreview"
)

type metrics struct {
	requests  *prometheus.CounterVec
	cacheHits *prometheus.CounterVec
	reviews   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeagent_http_auth_requests_total",
			Help: "Requests that needed a Kubernetes bearer token (--web.kubernetes-auth), by outcome: allowed, unauthenticated (401), denied (403), error (503: no answer from the API server), not_found (authenticated, unknown path).",
		}, []string{"result"}),
		cacheHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeagent_http_auth_cache_hits_total",
			Help: "Token and access checks answered from the cache, without asking the Kubernetes API server.",
		}, []string{"review"}),
		reviews: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeagent_http_auth_reviews_total",
			Help: "TokenReviews and SubjectAccessReviews sent to the Kubernetes API server, by whether they got an answer (ok) or not (error).",
		}, []string{"review", "result"}),
	}
	for _, r := range []string{resultAllowed, resultUnauthenticated, resultDenied, resultError, resultNotFound} {
		m.requests.WithLabelValues(r)
	}
	for _, r := range []string{reviewToken, reviewAccess} {
		m.cacheHits.WithLabelValues(r)
		m.reviews.WithLabelValues(r, "ok")
		m.reviews.WithLabelValues(r, "error")
	}
	for _, c := range []prometheus.Collector{m.requests, m.cacheHits, m.reviews} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
