package kubeletclient

import (
	"context"
	"errors"
	"fmt"

	"github.com/nodeagent/nodeagent/internal/promfetch"
)

// ReadOnlyPortOpen probes the kubelet's unauthenticated read-only port
// (http://<kubelet host>:--kubelet.readonly-port) once: GET /healthz, and
// when anything answers, GET /pods to confirm that it is a kubelet serving
// pod specs to anyone.
//
// It returns (true, nil) when /pods answers with a pod list, (false, nil)
// when the connection is refused (nothing listens), and an error whenever
// it cannot tell: a timeout (a firewall that drops, a listener that never
// answers), or an answer that is not a kubelet's. Unknown is never reported
// as closed.
func (c *Client) ReadOnlyPortOpen(ctx context.Context) (bool, error) {
	probe := func(path, accept string) promfetch.Target {
		return promfetch.Target{
			URL: c.readOnly.JoinPath(path), Client: c.plain, Accept: accept,
			Timeout: c.cfg.ReadOnlyPortTimeout, MaxBody: int64(c.cfg.MaxBodySize),
			Explainer: explainer{trust: "nothing (plain HTTP)"},
		}
	}
	_, _, err := promfetch.Get(ctx, probe("/healthz", "text/plain"))
	switch {
	case err == nil, errors.Is(err, ErrStatus), errors.Is(err, ErrUnauthorized), errors.Is(err, ErrForbidden):
		// Something answers HTTP (an unhealthy kubelet answers /healthz
		// with 500 and still serves /pods): ask for the pods.
	case isRefused(err):
		return false, nil
	default:
		return false, fmt.Errorf("read-only port check: %w", err)
	}
	body, _, err := promfetch.Get(ctx, probe("/pods", "application/json"))
	if err != nil {
		return false, fmt.Errorf("read-only port check: %s answers HTTP, but: %w", c.readOnly.Host, err)
	}
	if _, err := DecodePods(body); err != nil {
		return false, fmt.Errorf("read-only port check: %s answers HTTP, but GET %s is not a kubelet's pod list: %w: %w", c.readOnly.Host, c.readOnly.JoinPath("/pods"), ErrBadBody, err)
	}
	return true, nil
}

// AnonymousAuthEnabled sends one request without credentials to the
// kubelet's authenticated port (GET /healthz, the cheapest path behind the
// kubelet's authentication filter). A kubelet with anonymous authentication
// off answers 401: (false, nil). Any other answer means it took the request
// as system:anonymous: (true, nil), also when its authorization then denies
// it (403), because the next misconfigured RBAC rule opens it. Errors
// (unreachable, TLS, timeouts) mean the check cannot tell.
func (c *Client) AnonymousAuthEnabled(ctx context.Context) (bool, error) {
	_, _, err := promfetch.Get(ctx, c.target(c.anonymous, "/healthz", "text/plain"))
	switch {
	case errors.Is(err, ErrUnauthorized):
		return false, nil
	case err == nil, errors.Is(err, ErrForbidden), errors.Is(err, ErrStatus):
		return true, nil
	}
	return false, fmt.Errorf("anonymous-auth check: %w", err)
}
