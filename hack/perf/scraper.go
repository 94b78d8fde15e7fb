package main

// The scraper's identity for nodeagent served as the DaemonSet serves it
// (--web.kubernetes-auth): a ServiceAccount allowed what
// deploy/kubernetes/scraper-rbac.yaml allows Prometheus, get on the
// non-resource URLs /metrics and /metrics/*, and a token of it.

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	scraperName      = "nodeagent-perf-scraper"
	scraperNamespace = "default"
)

// scraperToken makes the scraper's ServiceAccount, ClusterRole and binding
// with the admin kubeconfig and returns a token of the account; remove
// deletes all three.
func scraperToken(ctx context.Context, kubeconfig string) (token string, remove func() error, err error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", kubeconfig, err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", kubeconfig, err)
	}
	remove = func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return errors.Join(
			cs.RbacV1().ClusterRoleBindings().Delete(ctx, scraperName, metav1.DeleteOptions{}),
			cs.RbacV1().ClusterRoles().Delete(ctx, scraperName, metav1.DeleteOptions{}),
			cs.CoreV1().ServiceAccounts(scraperNamespace).Delete(ctx, scraperName, metav1.DeleteOptions{}))
	}
	apply := metav1.ApplyOptions{FieldManager: "nodeagent-perf", Force: true}
	if _, err := cs.CoreV1().ServiceAccounts(scraperNamespace).Apply(ctx, corev1ac.ServiceAccount(scraperName, scraperNamespace), apply); err != nil {
		return "", nil, fmt.Errorf("ServiceAccount %s/%s: %w", scraperNamespace, scraperName, err)
	}
	role := rbacv1ac.ClusterRole(scraperName).WithRules(rbacv1ac.PolicyRule().
		WithNonResourceURLs("/metrics", "/metrics/*").WithVerbs("get"))
	if _, err := cs.RbacV1().ClusterRoles().Apply(ctx, role, apply); err != nil {
		return "", nil, errors.Join(fmt.Errorf("ClusterRole %s: %w", scraperName, err), remove())
	}
	binding := rbacv1ac.ClusterRoleBinding(scraperName).
		WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(scraperName)).
		WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(scraperName).WithNamespace(scraperNamespace))
	if _, err := cs.RbacV1().ClusterRoleBindings().Apply(ctx, binding, apply); err != nil {
		return "", nil, errors.Join(fmt.Errorf("ClusterRoleBinding %s: %w", scraperName, err), remove())
	}
	secs := int64(3600)
	tr, err := cs.CoreV1().ServiceAccounts(scraperNamespace).CreateToken(ctx, scraperName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, errors.Join(fmt.Errorf("token of %s/%s: %w", scraperNamespace, scraperName, err), remove())
	}
	return tr.Status.Token, remove, nil
}

// scraperClient scrapes nodeagent as the shipped ServiceMonitor has
// Prometheus do: HTTPS without verifying the agent's self-signed
// certificate (insecureSkipVerify), the bearer token on every request, the
// connection kept alive.
func scraperClient(token string) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:    &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, //nolint:gosec // as the shipped ServiceMonitor's tlsConfig
		DisableCompression: true,
	}
	return &http.Client{Timeout: time.Minute, Transport: bearer{token: token, rt: tr}}
}
