package doctor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/kubeletclient"
)

// Kubelet checks: its port answers, TLS is verified, it accepts the
// agent's credentials, RBAC and the kubelet itself allow the subresources
// the agent uses, the read-only port is closed and anonymous requests are
// refused. The errors of kubeletclient already say in operator terms what
// failed; the checks classify them and add the fix.

// kubeletSubresources are the nodes subresources the agent's collectors
// use: nodes/metrics for the kubelet passthroughs (/metrics,
// /metrics/probes, /metrics/resource), nodes/pods for the pod names of
// container series.
var kubeletSubresources = []struct{ sub, path string }{
	{"metrics", "/metrics"},
	{"pods", "/pods"},
}

func (d *doctor) newKubeletClient(context.Context) (*kubeletclient.Client, error) {
	cfg := d.opts.Kubelet
	cfg.Timeout = min(cfg.Timeout, d.checkTimeout)
	cfg.ReadOnlyPortTimeout = min(cfg.ReadOnlyPortTimeout, d.checkTimeout)
	// The client logs what the serve command wants in its log; doctor
	// reports instead.
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	return kubeletclient.New(cfg, d.opts.Getenv, logger, prometheus.NewRegistry())
}

// kubeletCreds says how the kubelet client authenticates, as
// kubeletclient.New decides it.
type kubeletCreds struct {
	token, cert string
	desc        string
}

func (d *doctor) kubeletCreds() kubeletCreds {
	cfg := d.opts.Kubelet
	switch {
	case cfg.ClientCertFile != "":
		return kubeletCreds{cert: cfg.ClientCertFile, desc: "the client certificate " + cfg.ClientCertFile}
	case cfg.TokenFile != "":
		if _, err := os.Stat(cfg.TokenFile); err == nil {
			return kubeletCreds{token: cfg.TokenFile, desc: "the bearer token in " + cfg.TokenFile}
		}
		return kubeletCreds{desc: "no credentials (no token file " + cfg.TokenFile + ")"}
	}
	return kubeletCreds{desc: "no credentials"}
}

// kubeletAnswers are the two requests the agent makes with its
// credentials: GET /metrics and GET /pods.
func (d *doctor) kubeletAnswers(ctx context.Context) (*kubeletclient.Client, []error, *outcome) {
	kc, err := d.kubelet.get(ctx)
	if errors.Is(err, kubeletclient.ErrNoKubelet) {
		o := skipf("the kubelet layer is off: see kubelet.reachable")
		return nil, nil, &o
	}
	if err != nil {
		o := skipf("no kubelet client: see kubelet.reachable")
		return nil, nil, &o
	}
	_, merr := d.kubeletMetrics.get(ctx)
	_, perr := d.kubeletPods.get(ctx)
	return kc, []error{merr, perr}, nil
}

// kubeletOnly is the client, for the checks that make their own requests.
func (d *doctor) kubeletOnly(ctx context.Context) (*kubeletclient.Client, *outcome) {
	kc, err := d.kubelet.get(ctx)
	if err != nil {
		o := skipf("no kubelet client: see kubelet.reachable")
		if errors.Is(err, kubeletclient.ErrNoKubelet) {
			o = skipf("the kubelet layer is off: see kubelet.reachable")
		}
		return nil, &o
	}
	return kc, nil
}

func isAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// unanswered: no HTTP exchange happened.
func unanswered(err error) bool {
	return isAny(err, kubeletclient.ErrUnreachable, kubeletclient.ErrTimeout, context.DeadlineExceeded, context.Canceled)
}

func checkKubeletReachable(ctx context.Context, d *doctor) outcome {
	_, err := d.kubelet.get(ctx)
	if errors.Is(err, kubeletclient.ErrNoKubelet) {
		return skipf("%v", err)
	}
	if err != nil {
		return fail(fmt.Sprintf("cannot build the kubelet client: %v", err), "correct the --kubelet.* flags the detail names")
	}
	kc, errs, skip := d.kubeletAnswers(ctx)
	if skip != nil {
		return *skip
	}
	if unanswered(errs[0]) && unanswered(errs[1]) {
		fix := "check that the kubelet runs and listens on that address (its address: setting, 0.0.0.0 by default), and that --kubelet.url or NODE_IP is this node's address"
		if isAny(errs[0], kubeletclient.ErrTimeout, context.DeadlineExceeded) {
			fix = "a firewall drops the packets, or the kubelet hangs: try curl -k " + kc.URLOf("/healthz") + " from the node"
		}
		return fail(errs[0].Error(), fix)
	}
	return okf("the kubelet answers at %s", kc.URLOf("/"))
}

func checkKubeletTLS(ctx context.Context, d *doctor) outcome {
	_, errs, skip := d.kubeletAnswers(ctx)
	if skip != nil {
		return *skip
	}
	if unanswered(errs[0]) && unanswered(errs[1]) {
		return skipf("no connection: see kubelet.reachable")
	}
	for _, err := range errs {
		if !errors.Is(err, kubeletclient.ErrTLS) {
			continue
		}
		var hostname x509.HostnameError
		var unknownCA x509.UnknownAuthorityError
		var invalid x509.CertificateInvalidError
		fix := "see the detail"
		switch {
		case errors.As(err, &hostname):
			fix = "point --kubelet.url (or NODE_IP/NODE_NAME) at a name or address in the kubelet's serving certificate, or reissue it with this address (serverTLSBootstrap: true puts the node's addresses in it)"
		case errors.As(err, &unknownCA):
			fix = "give --kubelet.ca-file the CA that signs the kubelet's serving certificate (the cluster CA with serverTLSBootstrap: true; a self-signed kubelet certificate is its own CA)"
		case errors.As(err, &invalid):
			fix = "renew the kubelet's serving certificate (rotateCertificates / serverTLSBootstrap)"
		}
		return fail(err.Error(), fix)
	}
	cfg := d.opts.Kubelet
	if cfg.InsecureSkipVerify {
		return warn("the kubelet's serving certificate is not verified (--kubelet.insecure-skip-verify): whoever intercepts the connection can read the agent's token",
			"give --kubelet.ca-file the CA that signs kubelet serving certificates instead")
	}
	by := "the system's trusted CAs"
	if cfg.CAFile != "" {
		if _, err := os.Stat(cfg.CAFile); err == nil {
			by = cfg.CAFile
		}
	}
	return okf("the kubelet's serving certificate is verified against %s", by)
}

func checkKubeletAuth(ctx context.Context, d *doctor) outcome {
	_, errs, skip := d.kubeletAnswers(ctx)
	if skip != nil {
		return *skip
	}
	creds := d.kubeletCreds()
	for _, err := range errs {
		if errors.Is(err, kubeletclient.ErrUnauthorized) {
			fix := "give credentials: --kubelet.token-file (a service-account token; in a pod the default) or --kubelet.client-cert-file and --kubelet.client-key-file"
			switch {
			case creds.token != "":
				fix = "the token must be a valid, unexpired service-account token of this cluster, and the kubelet must check tokens (authentication.webhook.enabled: true)"
			case creds.cert != "":
				fix = "the client certificate must be valid and signed by the kubelet's client CA (authentication.x509.clientCAFile)"
			}
			return fail(err.Error(), fix)
		}
	}
	for _, err := range errs {
		if err == nil || isAny(err, kubeletclient.ErrForbidden, kubeletclient.ErrStatus, kubeletclient.ErrBadBody, kubeletclient.ErrTooLarge) {
			return okf("the kubelet accepts %s", creds.desc)
		}
	}
	return skipf("no answer from the kubelet: see kubelet.reachable and kubelet.tls")
}

var forbiddenUserRE = regexp.MustCompile(`user=([^,)]+)`)

// checkKubeletRBAC asks both RBAC (a SelfSubjectAccessReview as the
// kubelet credential's identity) and the kubelet (its answer to the
// agent's request) whether get on nodes/<sub> is allowed.
func checkKubeletRBAC(sub, path string) func(context.Context, *doctor) outcome {
	return func(ctx context.Context, d *doctor) outcome {
		kc, errs, skip := d.kubeletAnswers(ctx)
		if skip != nil {
			return *skip
		}
		kerr := errs[0]
		if sub == "pods" {
			kerr = errs[1]
		}
		sar, sarErr := d.ssar[sub].get(ctx)
		if sarErr != nil {
			sar = ssarAnswer{reason: sarErr.Error()}
		}
		who := sar.user
		if m := forbiddenUserRE.FindStringSubmatch(fmt.Sprint(kerr)); who == "" && m != nil {
			who = m[1]
		}
		if who == "" {
			who = "the agent's identity"
		}
		rule := fmt.Sprintf(`{apiGroups: [""], resources: ["nodes/%s"], verbs: ["get"]}`, sub)
		grant := fmt.Sprintf("add the rule %s to the ClusterRole bound to %s (docs/kubelet.md)", rule, who)
		if sub == "pods" {
			grant += "; kubelets before 1.33 without KubeletFineGrainedAuthz check nodes/proxy instead, which also allows exec: read docs/kubelet.md first"
		}
		req := fmt.Sprintf("GET %s", kc.URLOf(path))
		rbac := "no SelfSubjectAccessReview: " + sar.reason
		if sar.asked {
			rbac = "RBAC denies it (SelfSubjectAccessReview)"
			if sar.allowed {
				rbac = "RBAC allows it (SelfSubjectAccessReview)"
			}
		}
		switch {
		case kerr == nil && (!sar.asked || sar.allowed):
			return okf("the kubelet allows %s get nodes/%s (%s); %s", who, sub, req, rbac)
		case kerr == nil:
			return warn(fmt.Sprintf("the kubelet allows %s get nodes/%s (%s), but RBAC does not grant it (SelfSubjectAccessReview): the kubelet does not authorize through the API server (authorization.mode AlwaysAllow), or knows this credential as someone else", who, sub, req),
				grant+", before the kubelet authorizes with Webhook")
		case errors.Is(kerr, kubeletclient.ErrForbidden) && sar.asked && sar.allowed:
			return fail(fmt.Sprintf("RBAC allows %s get nodes/%s, but the kubelet denies it (%s: 403): the kubelet does not authorize with the API server's RBAC, or authenticates this credential as another user: %v", who, sub, req, kerr),
				"set the kubelet's authorization.mode: Webhook, and make --kubelet.token-file the identity RBAC grants")
		case errors.Is(kerr, kubeletclient.ErrForbidden):
			return fail(fmt.Sprintf("the kubelet denies %s get nodes/%s (%s: 403); %s", who, sub, req, rbac), grant)
		case sar.asked && !sar.allowed:
			return fail(fmt.Sprintf("RBAC does not grant %s get nodes/%s (SelfSubjectAccessReview); the kubelet's own answer is unknown (see kubelet.reachable)", who, sub), grant)
		case sar.asked:
			return skipf("RBAC allows %s get nodes/%s (SelfSubjectAccessReview); the kubelet's own answer is unknown: see kubelet.reachable, kubelet.tls and kubelet.auth", who, sub)
		}
		return skipf("neither the kubelet nor RBAC answered: see kubelet.reachable and api.access (%s)", rbac)
	}
}

func checkReadOnlyPort(ctx context.Context, d *doctor) outcome {
	kc, skip := d.kubeletOnly(ctx)
	if skip != nil {
		return *skip
	}
	open, err := kc.ReadOnlyPortOpen(ctx)
	addr := strconv.Itoa(d.opts.Kubelet.ReadOnlyPort)
	if u, perr := url.Parse(kc.URLOf("/")); perr == nil {
		addr = net.JoinHostPort(u.Hostname(), addr)
	}
	switch {
	case err != nil:
		return warn(fmt.Sprintf("cannot tell whether the read-only port %s is open: %v", addr, err), "a firewall that drops packets to the port looks like this; check the kubelet's readOnlyPort setting")
	case open:
		return fail(fmt.Sprintf("the kubelet's read-only port %s is open: it serves /pods (pod specs, environment values included) and every metric to anyone, without authentication", addr),
			"set readOnlyPort: 0 in the kubelet's configuration (--read-only-port=0) and restart it")
	}
	return okf("the kubelet's read-only port %s is closed (connection refused)", addr)
}

func checkAnonymousAuth(ctx context.Context, d *doctor) outcome {
	kc, skip := d.kubeletOnly(ctx)
	if skip != nil {
		return *skip
	}
	on, err := kc.AnonymousAuthEnabled(ctx)
	switch {
	case err != nil:
		return skipf("cannot tell (see kubelet.reachable and kubelet.tls): %v", err)
	case on:
		return fail("the kubelet takes requests without credentials as system:anonymous: the next RBAC rule that names system:anonymous or system:unauthenticated opens it",
			"set authentication.anonymous.enabled: false in the kubelet's configuration (--anonymous-auth=false) and restart it")
	}
	return okf("the kubelet refuses requests without credentials (401)")
}
