package promfetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// server serves h on 127.0.0.1 until the test ends.
func server(t *testing.T, h http.HandlerFunc) *url.URL {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func target(u *url.URL) Target {
	return Target{
		URL: u, Client: &http.Client{}, MaxBody: 1 << 20, MaxBodyFlag: "--x.max-body-size",
		Explainer: Generic{Source: "x", FlagPrefix: "--x."},
	}
}

// TestGetFailures: every way a fetch fails gives an error of its class,
// naming the URL and saying what to do, and never a body.
func TestGetFailures(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	hang := func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}
	status := func(code int, msg string) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) { http.Error(w, msg, code) }
	}
	big := func(announce bool) http.HandlerFunc {
		return func(w http.ResponseWriter, _ *http.Request) {
			chunk := bytes.Repeat([]byte("x_series 1\n"), 1<<12)
			if announce {
				w.Header().Set("Content-Length", fmt.Sprint(64*len(chunk)))
			}
			for range 64 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}
	}
	closed, err := url.Parse(fmt.Sprintf("http://127.0.0.1:%d/metrics", fakekubelet.ClosedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)
	tlsURL, _ := url.Parse(tlsSrv.URL + "/metrics")
	plain := server(t, status(200, "x"))
	plainAsTLS := *plain
	plainAsTLS.Scheme = "https"

	for _, tc := range []struct {
		name    string
		u       *url.URL
		timeout time.Duration
		ctx     time.Duration
		class   error
		want    []string
	}{
		{name: "refused", u: closed, class: ErrUnreachable, want: []string{"connection refused, nothing listens there; is x running"}},
		{name: "own timeout", u: server(t, hang), timeout: 100 * time.Millisecond, class: ErrTimeout, want: []string{"within 100ms"}},
		{name: "caller's deadline", u: server(t, hang), ctx: 100 * time.Millisecond, class: ErrTimeout, want: []string{"within the scrape's deadline"}},
		{name: "401", u: server(t, status(401, "Unauthorized")), class: ErrUnauthorized, want: []string{`HTTP 401 "Unauthorized"`, "--x.token-file"}},
		{name: "403", u: server(t, status(403, "Forbidden (user=x)")), class: ErrForbidden, want: []string{`HTTP 403 "Forbidden (user=x)"`}},
		{name: "404", u: server(t, status(404, "404 page not found")), class: ErrNotFound, want: []string{"HTTP 404", "x does not serve that path"}},
		{name: "500", u: server(t, status(500, "boom")), class: ErrStatus, want: []string{`HTTP 500 "boom"`}},
		{name: "too large, announced", u: server(t, big(true)), class: ErrTooLarge, want: []string{"announced, limit 1048576", "raise --x.max-body-size"}},
		{name: "too large, streamed", u: server(t, big(false)), class: ErrTooLarge, want: []string{"more than 1048576 bytes"}},
		{name: "unknown CA", u: tlsURL, class: ErrTLS, want: []string{"--x.ca-file", "certificate"}},
		{name: "plain HTTP on https", u: &plainAsTLS, class: ErrTLS, want: []string{"use an http:// URL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			if tc.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.ctx)
				defer cancel()
			}
			tg := target(tc.u)
			tg.Timeout = tc.timeout
			start := time.Now()
			body, _, err := Get(ctx, tg)
			if !errors.Is(err, tc.class) || body != nil {
				t.Fatalf("Get: %d bytes, error %v; want none and %v", len(body), err, tc.class)
			}
			for _, w := range append(tc.want, tc.u.String()) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %s", d)
			}
			if tc.class == ErrUnreachable && !IsRefused(err) {
				t.Errorf("IsRefused(%v) = false", err)
			}
		})
	}
}

// TestReason: each class has its label; an error of none is a
// cancellation.
func TestReason(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		fmt.Errorf("GET x: %w", ErrUnreachable):                     "unreachable",
		fmt.Errorf("GET x: %w", ErrTimeout):                         "timeout",
		fmt.Errorf("GET x: %w", ErrTLS):                             "tls",
		fmt.Errorf("GET x: %w", ErrUnauthorized):                    "unauthorized",
		fmt.Errorf("GET x: %w", ErrForbidden):                       "forbidden",
		fmt.Errorf("GET x: %w: %w", ErrStatus, ErrNotFound):         "status",
		fmt.Errorf("GET x: %w", ErrTooLarge):                        "too_large",
		fmt.Errorf("GET x: %w: %w", ErrBadBody, ErrRepaired):        "bad_body",
		fmt.Errorf("GET x: %w", context.Canceled):                   "canceled",
		fmt.Errorf("GET x: %w", &net.OpError{Op: "dial", Err: nil}): "canceled",
	} {
		if got := Reason(err); got != want {
			t.Errorf("Reason(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestMetricsNegotiates: Metrics asks for protobuf first and decodes
// either format to the same families; a body that is not metrics is an
// error with no families.
func TestMetricsNegotiates(t *testing.T) {
	t.Parallel()
	text := fakekubelet.Payload(t, "k8s-1.37-local_metrics.txt")
	want, err := Decode(text, fakekubelet.TextFormat)
	if err != nil {
		t.Fatal(err)
	}
	var proto bytes.Buffer
	format := expfmt.NewFormat(expfmt.TypeProtoDelim)
	enc := expfmt.NewEncoder(&proto, format)
	for _, mf := range want {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	var accepts []string
	serve := func(contentType string, body []byte) *url.URL {
		return server(t, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			accepts = append(accepts, r.Header.Get("Accept"))
			mu.Unlock()
			w.Header().Set("Content-Type", contentType)
			_, _ = w.Write(body)
		})
	}
	for name, u := range map[string]*url.URL{
		"text":     serve(fakekubelet.TextFormat, text),
		"protobuf": serve(string(format), proto.Bytes()),
	} {
		got, err := Metrics(context.Background(), target(u))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(collectortest.Encode(t, got...)) != string(collectortest.Encode(t, want...)) {
			t.Errorf("%s: families differ from the capture's", name)
		}
	}
	garbage := serve("text/html", []byte("<html>login</html>"))
	got, err := Metrics(context.Background(), target(garbage))
	if !errors.Is(err, ErrBadBody) || got != nil || !strings.Contains(err.Error(), garbage.String()) {
		t.Errorf("HTML: %d families, error %v; want none and ErrBadBody naming the URL", len(got), err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range accepts {
		if !strings.HasPrefix(a, "application/vnd.google.protobuf") {
			t.Errorf("Accept %q does not prefer protobuf", a)
		}
	}
	if len(accepts) != 3 {
		t.Errorf("%d requests, want 3", len(accepts))
	}
}
