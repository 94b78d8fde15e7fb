package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func clientset(t *testing.T, env map[string]string) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", env["KUBECONFIG"])
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// testNamespace is a namespace of t's own, deleted when t ends.
func testNamespace(t *testing.T, cs *kubernetes.Clientset) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// TestClusterNode: the node is registered, Ready, schedulable, runs the
// kubelet of the harness's version and has the pod bridge's address.
func TestClusterNode(t *testing.T) {
	env := need(t)
	n, err := clientset(t, env).CoreV1().Nodes().Get(context.Background(), env["KUBELET_NODE_NAME"], metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ready = c.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		t.Errorf("node %s is not Ready: %+v", n.Name, n.Status.Conditions)
	}
	if n.Spec.Unschedulable || len(n.Spec.Taints) > 0 {
		t.Errorf("node %s: unschedulable=%v taints=%v", n.Name, n.Spec.Unschedulable, n.Spec.Taints)
	}
	if !strings.HasPrefix(n.Status.NodeInfo.KubeletVersion, "v1.") {
		t.Errorf("kubelet version %q", n.Status.NodeInfo.KubeletVersion)
	}
	var internal []string
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			internal = append(internal, a.Address)
		}
	}
	if len(internal) != 1 || internal[0] != env["NODE_IP"] {
		t.Errorf("InternalIP %v; want [%s]", internal, env["NODE_IP"])
	}
	t.Logf("node %s: kubelet %s, %s, InternalIP %v", n.Name, n.Status.NodeInfo.KubeletVersion, n.Status.NodeInfo.ContainerRuntimeVersion, internal)
}

// waitPods waits until count pods match selector in ns and each satisfies
// done, and returns them.
func waitPods(t *testing.T, cs *kubernetes.Clientset, ns, selector string, count int, done func(*corev1.Pod) bool) []corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var last string
	for {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err == nil {
			ok := len(pods.Items) == count
			var states []string
			for i := range pods.Items {
				p := &pods.Items[i]
				states = append(states, fmt.Sprintf("%s %s ip=%s", p.Name, p.Status.Phase, p.Status.PodIP))
				ok = ok && done(p)
			}
			if ok {
				return pods.Items
			}
			last = strings.Join(states, "; ")
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pods %s in %s: %s", selector, ns, last)
		case <-time.After(time.Second):
		}
	}
}

func running(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			return false
		}
	}
	return true
}

func pausePod(env map[string]string, hostNetwork bool, labels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{
			HostNetwork: hostNetwork,
			Containers: []corev1.Container{{
				Name: "work", Image: env["POD_IMAGE"], ImagePullPolicy: corev1.PullNever,
				Command: []string{"/pause", "-busy=5ms"},
			}},
		},
	}
}

// TestClusterDaemonSetHostNetwork: the DaemonSet controller and the
// scheduler place one hostNetwork pod on the node, which runs with the
// node's address, as nodeagent's own DaemonSet will.
func TestClusterDaemonSetHostNetwork(t *testing.T) {
	env := need(t)
	cs := clientset(t, env)
	ns := testNamespace(t, cs)
	labels := map[string]string{"app": "hostnet"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "hostnet"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: pausePod(env, true, labels),
		},
	}
	if _, err := cs.AppsV1().DaemonSets(ns).Create(context.Background(), ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, cs, ns, "app=hostnet", 1, running)
	p := pods[0]
	if p.Spec.NodeName != env["KUBELET_NODE_NAME"] || p.Status.PodIP != env["NODE_IP"] {
		t.Errorf("pod %s on %q with IP %s; want node %s, IP %s", p.Name, p.Spec.NodeName, p.Status.PodIP, env["KUBELET_NODE_NAME"], env["NODE_IP"])
	}
	t.Logf("DaemonSet pod %s running on %s, IP %s", p.Name, p.Spec.NodeName, p.Status.PodIP)
}

// TestClusterDeploymentPodNetwork: an ordinary pod gets an address of the
// pod network from the CNI bridge and runs.
func TestClusterDeploymentPodNetwork(t *testing.T) {
	env := need(t)
	cs := clientset(t, env)
	ns := testNamespace(t, cs)
	subnet, err := netip.ParsePrefix(env["POD_SUBNET"])
	if err != nil {
		t.Fatalf("POD_SUBNET: %v", err)
	}
	labels := map[string]string{"app": "podnet"}
	replicas := int32(2)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podnet"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: pausePod(env, false, labels),
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := waitPods(t, cs, ns, "app=podnet", 2, running)
	seen := map[string]bool{}
	for _, p := range pods {
		ip, err := netip.ParseAddr(p.Status.PodIP)
		if err != nil || !subnet.Contains(ip) || ip.String() == env["NODE_IP"] {
			t.Errorf("pod %s has IP %q; want one of %s other than the node's", p.Name, p.Status.PodIP, subnet)
		}
		if seen[p.Status.PodIP] {
			t.Errorf("two pods with IP %s", p.Status.PodIP)
		}
		seen[p.Status.PodIP] = true
		t.Logf("Deployment pod %s running, IP %s", p.Name, p.Status.PodIP)
	}
}

// TestClusterServiceAccountToken: a pod's projected ServiceAccount token,
// issued by the API server's signer and mounted by the kubelet with the CA
// the controller-manager publishes, authenticates it as its account. The
// pod has the host's network: nothing routes the Service address without
// kube-proxy. Its log is read back through the API server, which reaches
// the kubelet by the node's name.
func TestClusterServiceAccountToken(t *testing.T) {
	env := need(t)
	cs := clientset(t, env)
	ns := testNamespace(t, cs)
	ctx := context.Background()
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "whoami"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "whoami", Labels: map[string]string{"app": "whoami"}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "whoami",
			HostNetwork:        true,
			RestartPolicy:      corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "whoami", Image: env["POD_IMAGE"], ImagePullPolicy: corev1.PullNever,
				Command: []string{"/pause", "-whoami=" + env["KUBE_APISERVER_URL"]},
			}},
		},
	}
	// The ServiceAccount admission waits for the account to be visible.
	var err error
	for i := 0; i < 20; i++ {
		if _, err = cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	finished := func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	}
	p := waitPods(t, cs, ns, "app=whoami", 1, finished)[0]
	logs, err := cs.CoreV1().Pods(ns).GetLogs("whoami", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("pod log through the API server: %v", err)
	}
	want := "system:serviceaccount:" + ns + ":whoami"
	if p.Status.Phase != corev1.PodSucceeded || strings.TrimSpace(string(logs)) != want {
		t.Fatalf("whoami pod %s, log %q; want Succeeded and %q", p.Status.Phase, logs, want)
	}
	t.Logf("the pod's projected token authenticates as %s", want)
}
