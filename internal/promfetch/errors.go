package promfetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Error classes a caller acts on (a passthrough's status, the reason label
// of an error counter). Every error of Get and Metrics wraps one of them,
// with the URL and what to do.
var (
	ErrUnreachable  = errors.New("cannot connect")
	ErrTimeout      = errors.New("no complete answer in time")
	ErrTLS          = errors.New("TLS failed")
	ErrUnauthorized = errors.New("unauthorized: our credentials were not accepted")
	ErrForbidden    = errors.New("forbidden: authorization denied the request")
	ErrStatus       = errors.New("unexpected HTTP status")
	ErrTooLarge     = errors.New("response too large")
	ErrBadBody      = errors.New("the response is not what was asked for")
)

// ErrNotFound is wrapped, next to ErrStatus, by the error of a 404 answer:
// the source runs but does not serve that path.
var ErrNotFound = errors.New("not found")

// ErrRepaired is wrapped, next to ErrBadBody, by the error of a body in
// which a family or a series appeared twice (no valid exposition has that):
// the repeats were dropped, and the families that come with the error are
// good to serve.
var ErrRepaired = errors.New("repeated families or series were dropped")

// Reason is the label an error counter gives err: unreachable, timeout,
// tls, unauthorized, forbidden, status, too_large, bad_body, or canceled
// for a request its caller gave up.
func Reason(err error) string {
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

// IsRefused says whether err is a refused connection: nothing listens.
func IsRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

// Explainer turns a failed exchange into an error that says, in one
// source's terms, what went wrong and what to change. Both methods return
// an error that names u and wraps one of the classes.
type Explainer interface {
	// TransportError explains an exchange that got no complete HTTP answer.
	// timeout is the Target's own (zero when only ctx bounds it).
	TransportError(ctx context.Context, u *url.URL, timeout time.Duration, err error) error
	// StatusError explains an answer other than 200 OK; body is its start.
	StatusError(u *url.URL, code int, body string) error
}

// Generic explains failures of any source. Source names it in hints ("is
// kube-proxy running…"); FlagPrefix names its settings ("--kube-proxy.").
type Generic struct {
	Source     string
	FlagPrefix string
}

func (g Generic) source() string {
	if g.Source == "" {
		return "the source"
	}
	return g.Source
}

// TransportError classifies err: TLS, timeout, caller's cancellation,
// refused, unresolvable, closed without an answer; anything else is
// unreachable.
func (g Generic) TransportError(ctx context.Context, u *url.URL, timeout time.Duration, err error) error {
	var (
		netErr net.Error
		dnsErr *net.DNSError
	)
	switch {
	case IsTLS(err):
		hint := ""
		if g.FlagPrefix != "" && u.Scheme == "https" {
			hint = fmt.Sprintf("; give the CA that signs its certificate with %sca-file", g.FlagPrefix)
		}
		if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			hint = "; the port answers plain HTTP: use an http:// URL"
		}
		return fmt.Errorf("GET %s: %w%s: %w", u, ErrTLS, hint, err)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("GET %s: %w", u, ctx.Err())
		}
		within := "within the scrape's deadline"
		if timeout > 0 {
			within = fmt.Sprintf("within %s, or the scrape's deadline came first", timeout)
		}
		return fmt.Errorf("GET %s: %w (%s): %w", u, ErrTimeout, within, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("GET %s: %w", u, err)
	case IsRefused(err):
		return fmt.Errorf("GET %s: %w: connection refused, nothing listens there; is %s running and serving metrics on that address?: %w", u, ErrUnreachable, g.source(), err)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("GET %s: %w: cannot resolve %q: %w", u, ErrUnreachable, u.Hostname(), err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("GET %s: %w: %s closed the connection without answering (restarting?): %w", u, ErrUnreachable, g.source(), err)
	}
	return fmt.Errorf("GET %s: %w: %w", u, ErrUnreachable, err)
}

// StatusError classifies a non-200 answer, with the source's own message.
func (g Generic) StatusError(u *url.URL, code int, body string) error {
	switch code {
	case http.StatusUnauthorized:
		hint := ""
		if g.FlagPrefix != "" {
			hint = fmt.Sprintf(": give a bearer token with %stoken-file", g.FlagPrefix)
		}
		return fmt.Errorf("GET %s: %w (HTTP 401 %q)%s", u, ErrUnauthorized, body, hint)
	case http.StatusForbidden:
		return fmt.Errorf("GET %s: %w (HTTP 403 %q)", u, ErrForbidden, body)
	case http.StatusNotFound:
		return fmt.Errorf("GET %s: %w: %w: HTTP 404 %q; %s does not serve that path", u, ErrStatus, ErrNotFound, body, g.source())
	}
	return fmt.Errorf("GET %s: %w: HTTP %d %q", u, ErrStatus, code, body)
}

// IsTLS says whether err is a failed TLS handshake or verification, or
// plain HTTP on a port asked for TLS.
func IsTLS(err error) bool {
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		record    tls.RecordHeaderError
		alert     tls.AlertError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &record) || errors.As(err, &alert) ||
		strings.Contains(err.Error(), "remote error: tls:") ||
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}
