package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	rbacv1ac "k8s.io/client-go/applyconfigurations/rbac/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The ServiceAccounts the integration tests present to the kubelet: one
// that may read its metrics and pods (and nothing else: no nodes/proxy, no
// nodes/healthz), one with no rights at all.
const (
	namespace        = "default"
	authorisedSA     = "node-agent"
	unauthorisedSA   = "nobody"
	readerRole       = "nodeagent-harness-kubelet-reader"
	fieldManager     = "nodeagent-harness"
	tokenLifetimeSec = 24 * 3600
)

func clientset(kubeconfig string) (*kubernetes.Clientset, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kubeconfig, err)
	}
	return kubernetes.NewForConfig(cfg)
}

// bootstrapCommand applies the two ServiceAccounts and the ClusterRole and
// its binding (server-side apply, so a second run changes nothing), then
// writes a fresh token of each account to DIR/<account>.token.
func bootstrapCommand(fs *flag.FlagSet) func(context.Context) error {
	kubeconfig := fs.String("kubeconfig", "", "an admin kubeconfig")
	dir := fs.String("tokens", "", "directory for the token files")
	return func(ctx context.Context) error {
		if *kubeconfig == "" || *dir == "" {
			return errors.New("-kubeconfig and -tokens are required")
		}
		cs, err := clientset(*kubeconfig)
		if err != nil {
			return err
		}
		apply := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
		for _, sa := range []string{authorisedSA, unauthorisedSA} {
			if _, err := cs.CoreV1().ServiceAccounts(namespace).Apply(ctx, corev1ac.ServiceAccount(sa, namespace), apply); err != nil {
				return fmt.Errorf("ServiceAccount %s: %w", sa, err)
			}
		}
		role := rbacv1ac.ClusterRole(readerRole).WithRules(rbacv1ac.PolicyRule().
			WithAPIGroups("").WithResources("nodes/metrics", "nodes/pods").WithVerbs("get"))
		if _, err := cs.RbacV1().ClusterRoles().Apply(ctx, role, apply); err != nil {
			return fmt.Errorf("ClusterRole %s: %w", readerRole, err)
		}
		binding := rbacv1ac.ClusterRoleBinding(readerRole).
			WithRoleRef(rbacv1ac.RoleRef().WithAPIGroup("rbac.authorization.k8s.io").WithKind("ClusterRole").WithName(readerRole)).
			WithSubjects(rbacv1ac.Subject().WithKind("ServiceAccount").WithName(authorisedSA).WithNamespace(namespace))
		if _, err := cs.RbacV1().ClusterRoleBindings().Apply(ctx, binding, apply); err != nil {
			return fmt.Errorf("ClusterRoleBinding %s: %w", readerRole, err)
		}
		if err := os.MkdirAll(*dir, 0o700); err != nil {
			return err
		}
		for _, sa := range []string{authorisedSA, unauthorisedSA} {
			secs := int64(tokenLifetimeSec)
			tr, err := cs.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, sa,
				&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs}}, metav1.CreateOptions{})
			if err != nil {
				return fmt.Errorf("token of %s: %w", sa, err)
			}
			path := filepath.Join(*dir, sa+".token")
			if err := os.WriteFile(path+".new", []byte(tr.Status.Token), 0o600); err != nil {
				return err
			}
			if err := os.Rename(path+".new", path); err != nil {
				return err
			}
		}
		return nil
	}
}

// waitNodeCommand waits until the Node reports Ready in a heartbeat sent
// at -since or later: after a restart, etcd still holds the Ready of the
// kubelet that ran before.
func waitNodeCommand(fs *flag.FlagSet) func(context.Context) error {
	kubeconfig := fs.String("kubeconfig", "", "an admin kubeconfig")
	node := fs.String("node", "", "the Node's name")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait")
	since := fs.Int64("since", 0, "Unix time: older heartbeats do not count")
	return func(ctx context.Context) error {
		cs, err := clientset(*kubeconfig)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		last := "not registered"
		for {
			n, err := cs.CoreV1().Nodes().Get(ctx, *node, metav1.GetOptions{})
			if err == nil {
				last = "no Ready condition"
				for _, c := range n.Status.Conditions {
					if c.Type == corev1.NodeReady {
						if c.LastHeartbeatTime.Unix() < *since {
							last = "no heartbeat since " + time.Unix(*since, 0).UTC().Format(time.RFC3339)
							break
						}
						if c.Status == corev1.ConditionTrue {
							return nil
						}
						last = fmt.Sprintf("Ready=%s: %s", c.Status, c.Message)
					}
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("node %s after %v: %s", *node, *timeout, last)
			case <-time.After(time.Second):
			}
		}
	}
}
