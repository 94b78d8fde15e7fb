package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// perfPodsCommand runs N ordinary pods for make perf-kubelet: a namespace
// with one Deployment of the harness's pod image (its /pause: it sleeps,
// or with -busy burns a little CPU every second), small requests so that all fit on the node, and waits until N
// pods of it are Running with their container ready. -replicas 0 deletes
// the namespace and waits until its pods are gone.
func perfPodsCommand(fs *flag.FlagSet) func(context.Context) error {
	kubeconfig := fs.String("kubeconfig", "", "an admin kubeconfig")
	ns := fs.String("namespace", "nodeagent-perf", "the namespace (created; deleted by -replicas 0)")
	image := fs.String("image", "registry.k8s.io/pause:3.10", "the pod image (imported, never pulled)")
	replicas := fs.Int("replicas", 100, "pods to run; 0 deletes the namespace")
	busy := fs.Duration("busy", 0, "CPU time each pod burns every second (the pod program's -busy), so that its CPU counters move as a working container's do; 0: the pods sleep")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait")
	return func(ctx context.Context) error {
		if *kubeconfig == "" {
			return errors.New("-kubeconfig is required")
		}
		cs, err := clientset(*kubeconfig)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if *replicas == 0 {
			return deletePerfPods(ctx, cs, *ns, *timeout)
		}
		return runPerfPods(ctx, cs, *ns, *image, perfPodCommand(*busy), int32(*replicas), *timeout)
	}
}

const perfApp = "nodeagent-perf"

// perfPodCommand is the perf pods' command: the pod program, sleeping, or
// burning busy of CPU every second.
func perfPodCommand(busy time.Duration) []string {
	if busy <= 0 {
		return []string{"/pause"}
	}
	return []string{"/pause", "-busy=" + busy.String()}
}

func runPerfPods(ctx context.Context, cs *kubernetes.Clientset, ns, image string, command []string, n int32, timeout time.Duration) error {
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	labels := map[string]string{"app": perfApp}
	small := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m"), corev1.ResourceMemory: resource.MustParse("8Mi")}
	grace := int64(1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: perfApp, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					AutomountServiceAccountToken:  new(false),
					Containers: []corev1.Container{{
						Name:            "pause",
						Image:           image,
						ImagePullPolicy: corev1.PullNever,
						Command:         command,
						Resources:       corev1.ResourceRequirements{Requests: small},
					}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); apierrors.IsAlreadyExists(err) {
		_, err = cs.AppsV1().Deployments(ns).Update(ctx, d, metav1.UpdateOptions{})
		if err != nil {
			return fmt.Errorf("updating Deployment %s/%s: %w", ns, perfApp, err)
		}
	} else if err != nil {
		return fmt.Errorf("creating Deployment %s/%s: %w", ns, perfApp, err)
	}
	t0 := time.Now()
	last := ""
	for {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + perfApp})
		if err == nil {
			ready, phases := 0, map[corev1.PodPhase]int{}
			for _, p := range pods.Items {
				phases[p.Status.Phase]++
				if p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning && allReady(p) {
					ready++
				}
			}
			if now := fmt.Sprintf("%d of %d running and ready (%v)", ready, n, phases); now != last {
				fmt.Printf("clustertool perf-pods: %s after %v\n", now, time.Since(t0).Round(time.Second))
				last = now
			}
			if ready == int(n) && len(pods.Items) == int(n) {
				return nil
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			// The kubelet's maxPods is its default, 110, the harness's
			// three static pods included.
			return fmt.Errorf("after %v: %s (the node takes at most 110 pods, 3 of them static)", timeout, last)
		case <-time.After(2 * time.Second):
		}
	}
}

func allReady(p corev1.Pod) bool {
	if len(p.Status.ContainerStatuses) == 0 {
		return false
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			return false
		}
	}
	return true
}

func deletePerfPods(ctx context.Context, cs *kubernetes.Clientset, ns string, timeout time.Duration) error {
	err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting namespace %s: %w", ns, err)
	}
	for {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s still there after %v", ns, timeout)
		case <-time.After(2 * time.Second):
		}
	}
}
