// Package promfetch fetches one metrics endpoint over HTTP(S), bounded in
// time and size, and decodes its body into client_model families that pass
// through unchanged (names, help, types, labels, values; explicit
// timestamps stripped). The kubelet client and the kube-proxy and
// container-runtime passthroughs share it; what is particular to one source
// (its credentials, the hints its errors give) stays with the caller, in an
// Explainer.
package promfetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// AcceptMetrics asks for the delimited protobuf format first, which is much
// cheaper to parse than text, and for the classic text format otherwise;
// every Prometheus client library serves both.
const AcceptMetrics = `application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3`

const userAgent = "nodeagent"

// Target is one endpoint and the bounds of a request to it.
type Target struct {
	// URL is what is fetched.
	URL *url.URL
	// Client sends the request: its transport carries TLS and credentials.
	Client *http.Client
	// Accept is the Accept header; empty means AcceptMetrics.
	Accept string
	// Timeout bounds the whole exchange, body included; zero leaves only
	// the caller's context to bound it.
	Timeout time.Duration
	// MaxBody caps the body in bytes; a larger one is refused, by its
	// Content-Length first and else while reading.
	MaxBody int64
	// MaxBodyFlag names the setting that raises MaxBody, for errors.
	MaxBodyFlag string
	// RetryUnauthorized sends the request once more after a 401: a token
	// file may have rotated, and client-go's token source drops its cached
	// token on a 401, so the retry reads the file again.
	RetryUnauthorized bool
	// Explainer says what a failure means in the source's terms; nil is
	// Generic{}.
	Explainer Explainer
}

// Get fetches t.URL and returns the body and headers of a 200 answer.
// Every error names the URL and wraps one of the classes (ErrUnreachable,
// ErrTimeout, ErrTLS, ErrUnauthorized, ErrForbidden, ErrStatus,
// ErrTooLarge) or the context's error when the caller gave up.
func Get(ctx context.Context, t Target) ([]byte, http.Header, error) {
	ex := t.Explainer
	if ex == nil {
		ex = Generic{}
	}
	accept := t.Accept
	if accept == "" {
		accept = AcceptMetrics
	}
	if t.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.Timeout)
		defer cancel()
	}
	u := t.URL
	resp, err := do(ctx, t.Client, u, accept)
	if err == nil && resp.StatusCode == http.StatusUnauthorized && t.RetryUnauthorized {
		drain(resp)
		resp, err = do(ctx, t.Client, u, accept)
	}
	if err != nil {
		return nil, nil, ex.TransportError(ctx, u, t.Timeout, err)
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return nil, nil, ex.StatusError(u, resp.StatusCode, bodySnippet(resp))
	}
	raise := ""
	if t.MaxBodyFlag != "" {
		raise = "; raise " + t.MaxBodyFlag + " if the source really serves that much"
	}
	if resp.ContentLength > t.MaxBody {
		return nil, nil, fmt.Errorf("GET %s: %w (%d bytes announced, limit %d%s)", u, ErrTooLarge, resp.ContentLength, t.MaxBody, raise)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, t.MaxBody+1))
	if err != nil {
		return nil, nil, ex.TransportError(ctx, u, t.Timeout, fmt.Errorf("reading the body: %w", err))
	}
	if int64(len(body)) > t.MaxBody {
		return nil, nil, fmt.Errorf("GET %s: %w (more than %d bytes%s)", u, ErrTooLarge, t.MaxBody, raise)
	}
	return body, resp.Header, nil
}

// Metrics fetches t.URL and decodes the body (Decode): the families come
// sorted by name, without timestamps. An error wrapping ErrRepaired comes
// with families that are good to serve; any other error comes with none.
func Metrics(ctx context.Context, t Target) ([]*dto.MetricFamily, error) {
	body, h, err := Get(ctx, t)
	if err != nil {
		return nil, err
	}
	mfs, err := Decode(body, h.Get("Content-Type"))
	if err != nil {
		return mfs, fmt.Errorf("GET %s: %w", t.URL, err)
	}
	return mfs, nil
}

func do(ctx context.Context, hc *http.Client, u *url.URL, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", userAgent)
	return hc.Do(req)
}

// drain reads a little of what is left so the connection can be reused,
// and closes the body.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
}

// bodySnippet returns the start of an error body, trimmed, for messages.
func bodySnippet(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return strings.TrimSpace(string(b))
}
