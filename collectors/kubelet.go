package collectors

import (
	"context"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// Kubelet is the kubelet as the kubelet-layer and security collectors see
// it. cmd/nodeagent builds one (kubeletclient.Client) and shares it; every
// method bounds its own requests with the client's timeouts and honours ctx.
type Kubelet interface {
	// Metrics fetches a metrics path of the authenticated port (/metrics,
	// /metrics/probes, /metrics/resource) and returns its families
	// unchanged, sorted by name, without timestamps. Families returned
	// along with an error are still good to serve.
	Metrics(ctx context.Context, path string) ([]*dto.MetricFamily, error)
	// ReadOnlyPortOpen probes the unauthenticated read-only port once:
	// (true, nil) open, (false, nil) closed (connection refused), an error
	// when it cannot tell (a timeout, an answer that is not a kubelet's).
	ReadOnlyPortOpen(ctx context.Context) (bool, error)
	// AnonymousAuthEnabled sends one request without credentials to the
	// authenticated port: (false, nil) when it is refused with 401, (true,
	// nil) when the kubelet took it as system:anonymous, an error when it
	// cannot tell.
	AnonymousAuthEnabled(ctx context.Context) (bool, error)
	// SecurityCheckInterval is how often the security checks run again
	// (--kubelet.security-check-interval).
	SecurityCheckInterval() time.Duration
}
