package kubeletclient

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// clientMetrics are the client's nodeagent_kubelet_* self-metrics, served
// on /metrics with the agent's own.
type clientMetrics struct {
	up     *prometheus.GaugeVec
	errors *prometheus.CounterVec
}

func newClientMetrics(reg prometheus.Registerer, verified bool) (*clientMetrics, error) {
	m := &clientMetrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "nodeagent_kubelet_up",
			Help: "nodeagent: whether the last request to this kubelet endpoint succeeded and its answer decoded (1) or not (0).",
		}, []string{"endpoint"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nodeagent_kubelet_request_errors_total",
			Help: "nodeagent: failed requests to the kubelet by endpoint and reason (unreachable, timeout, tls, unauthorized, forbidden, status, too_large, bad_body, canceled).",
		}, []string{"endpoint", "reason"}),
	}
	tlsVerified := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "nodeagent_kubelet_tls_verified",
		Help: "nodeagent: whether the kubelet's serving certificate is verified (1) or --kubelet.insecure-skip-verify is set (0).",
	})
	if verified {
		tlsVerified.Set(1)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.up, m.errors, tlsVerified} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("registering kubelet client metrics: %w", err)
			}
		}
	}
	return m, nil
}

// record notes the outcome of one request to endpoint.
func (m *clientMetrics) record(endpoint string, err error) {
	if err == nil {
		m.up.WithLabelValues(endpoint).Set(1)
		return
	}
	m.up.WithLabelValues(endpoint).Set(0)
	m.errors.WithLabelValues(endpoint, reason(err)).Inc()
}

// reason is the error metric's label for err.
func reason(err error) string {
	for _, r := range []struct {
		err   error
		label string
	}{
		{ErrUnreachable, "unreachable"},
		{ErrTimeout, "timeout"},
		{ErrTLS, "tls"},
		{ErrUnauthorized, "unauthorized"},
		{ErrForbidden, "forbidden"},
		{ErrStatus, "status"},
		{ErrTooLarge, "too_large"},
		{ErrBadBody, "bad_body"},
	} {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "canceled"
}
