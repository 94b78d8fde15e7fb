package kubeletclient

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/internal/promfetch"
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

// record notes the outcome of one request to endpoint. A body repaired of
// repeated series is served, so the endpoint counts as up; the flaw is
// counted as bad_body all the same.
func (m *clientMetrics) record(endpoint string, err error) {
	up := 0.0
	if err == nil || errors.Is(err, promfetch.ErrRepaired) {
		up = 1
	}
	m.up.WithLabelValues(endpoint).Set(up)
	if err != nil {
		m.errors.WithLabelValues(endpoint, promfetch.Reason(err)).Inc()
	}
}
