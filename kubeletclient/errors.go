package kubeletclient

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
	"regexp"
	"strings"
	"time"

	"github.com/nodeagent/nodeagent/internal/promfetch"
)

var _ promfetch.Explainer = explainer{}

// TransportError explains a request that got no HTTP answer, naming the
// kubelet's settings and ours.
func (e explainer) TransportError(ctx context.Context, u *url.URL, timeout time.Duration, err error) error {
	var (
		unknownCA  x509.UnknownAuthorityError
		hostname   x509.HostnameError
		invalid    x509.CertificateInvalidError
		verifyErr  *tls.CertificateVerificationError
		recordErr  tls.RecordHeaderError
		netErr     net.Error
		dnsErr     *net.DNSError
		certHolder *x509.Certificate
	)
	if errors.As(err, &verifyErr) && len(verifyErr.UnverifiedCertificates) > 0 {
		certHolder = verifyErr.UnverifiedCertificates[0]
	}
	switch {
	case errors.As(err, &unknownCA):
		cert := unknownCA.Cert
		if cert == nil {
			cert = certHolder
		}
		return fmt.Errorf("GET %s: %w: the kubelet's serving certificate%s is not signed by a CA in %s; "+
			"give the CA that signs kubelet serving certificates with --kubelet.ca-file "+
			"(the cluster CA when the kubelet runs with serverTLSBootstrap: true; a self-signed kubelet certificate is its own CA), "+
			"or skip verification with --kubelet.insecure-skip-verify (not recommended): %w",
			u, ErrTLS, describeCert(cert), e.trust, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("GET %s: %w: the kubelet's serving certificate is valid for %s, not for %q; "+
			"point --kubelet.url (or NODE_IP/NODE_NAME) at a name or address in the certificate, "+
			"or reissue the kubelet's certificate with that name: %w",
			u, ErrTLS, certNames(hostname.Certificate), hostname.Host, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("GET %s: %w: the kubelet's serving certificate%s is not valid (%s); renew it: %w",
			u, ErrTLS, describeCert(invalid.Cert), invalidReason(invalid), err)
	case errors.As(err, &verifyErr):
		return fmt.Errorf("GET %s: %w: verifying the kubelet's serving certificate%s against %s: %w",
			u, ErrTLS, describeCert(certHolder), e.trust, err)
	case errors.As(err, &recordErr) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Errorf("GET %s: %w: the port answered plain HTTP, not TLS; the kubelet's authenticated port (10250) speaks https: %w", u, ErrTLS, err)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("GET %s: %w", u, ctx.Err())
		}
		return fmt.Errorf("GET %s: %w (within %s, or the scrape's deadline came first): %w", u, ErrTimeout, timeout, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("GET %s: %w", u, err)
	case isRefused(err):
		return fmt.Errorf("GET %s: %w: connection refused, nothing listens there; is the kubelet running, and is --kubelet.url (or NODE_IP) this node's address?: %w", u, ErrUnreachable, err)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("GET %s: %w: cannot resolve %q; use NODE_IP (status.hostIP) instead of NODE_NAME, or an address in --kubelet.url: %w", u, ErrUnreachable, u.Hostname(), err)
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("GET %s: %w: the kubelet closed the connection without answering (restarting?): %w", u, ErrUnreachable, err)
	case isTLSAlert(err):
		return fmt.Errorf("GET %s: %w: the kubelet rejected the TLS handshake (with %s): %w", u, ErrTLS, e.creds, err)
	}
	return fmt.Errorf("GET %s: %w: %w", u, ErrUnreachable, err)
}

// isTLSAlert reports an alert from the peer (a client certificate it
// refused, no common protocol version).
func isTLSAlert(err error) bool {
	var alert tls.AlertError
	return errors.As(err, &alert) || strings.Contains(err.Error(), "remote error: tls:")
}

// StatusError explains a non-200 answer, with the kubelet's own message:
// for 401 what to check of our credentials, for 403 the ClusterRole rule
// the kubelet wanted.
func (e explainer) StatusError(u *url.URL, code int, msg string) error {
	switch code {
	case http.StatusUnauthorized:
		return fmt.Errorf("GET %s: %w (HTTP 401 %q, sent %s): %s", u, ErrUnauthorized, msg, e.creds, e.creds.unauthorizedHint())
	case http.StatusForbidden:
		// The path below the base URL, with its leading slash (JoinPath
		// on a base without a path leaves none).
		path := u.Path
		if e.base != nil {
			path = strings.TrimPrefix(path, strings.TrimSuffix(e.base.Path, "/"))
		}
		path = "/" + strings.TrimPrefix(path, "/")
		return fmt.Errorf("GET %s: %w (HTTP 403 %q): %s", u, ErrForbidden, msg, rbacHint(path, msg))
	}
	return promfetch.Generic{Source: "the kubelet"}.StatusError(u, code, msg)
}

// unauthorizedHint says what to check for each way of authenticating.
func (c credentials) unauthorizedHint() string {
	switch {
	case c.tokenFile != "":
		return "check that the token is a valid, unexpired service-account token and that the kubelet checks tokens " +
			"(authentication.webhook.enabled: true in its configuration)"
	case c.certFile != "":
		return "check that the client certificate is valid and signed by the kubelet's client CA (authentication.x509.clientCAFile in its configuration)"
	}
	return "give credentials: --kubelet.token-file (a service-account token) or --kubelet.client-cert-file and --kubelet.client-key-file"
}

var forbiddenUserRE = regexp.MustCompile(`user=([^,)]+)`)

// rbacHint names the ClusterRole rule the kubelet wanted, from the path the
// way the kubelet maps paths to subresources of nodes.
func rbacHint(path, kubeletMsg string) string {
	who := "the agent's identity"
	if m := forbiddenUserRE.FindStringSubmatch(kubeletMsg); m != nil {
		who = m[1]
	}
	sub := subresource(path)
	hint := fmt.Sprintf(`grant %s the ClusterRole rule {apiGroups: [""], resources: ["nodes/%s"], verbs: ["get"]}`, who, sub)
	if sub == "pods" || sub == "healthz" {
		hint += fmt.Sprintf(" (kubelets before 1.33 without the KubeletFineGrainedAuthz feature check nodes/proxy instead of nodes/%s; see docs/kubelet.md before granting it, it also allows exec)", sub)
	}
	return hint
}

// subresource is the nodes subresource the kubelet authorizes a path as.
func subresource(path string) string {
	under := func(prefix string) bool { return path == prefix || strings.HasPrefix(path, prefix+"/") }
	switch {
	case under("/metrics"):
		return "metrics"
	case under("/stats"):
		return "stats"
	case under("/pods"):
		return "pods"
	case under("/healthz"):
		return "healthz"
	}
	return "proxy"
}

func describeCert(c *x509.Certificate) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf(" (subject %q, issuer %q)", c.Subject.String(), c.Issuer.String())
}

func certNames(c *x509.Certificate) string {
	if c == nil {
		return "other names"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no names (no subjectAltName)"
	}
	return strings.Join(names, ", ")
}

func invalidReason(e x509.CertificateInvalidError) string {
	if e.Reason == x509.Expired && e.Cert != nil {
		return fmt.Sprintf("valid from %s to %s", e.Cert.NotBefore.UTC().Format(time.RFC3339), e.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return e.Error()
}
