package doctor

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/nodeagent/nodeagent/cgroup"
)

// ErrUsage marks a wrong invocation (an unknown symptom, --pod missing or
// misplaced): exit code 2.
var ErrUsage = errors.New("usage")

// Symptom is one complaint "doctor why" walks the layers for.
type Symptom struct {
	Name, Summary string
	// Chain is the checks in the order the data or the request flows:
	// the first one that is not ok is the silent layer.
	Chain []string
}

// Symptoms are the complaints doctor why knows, in the order --help lists
// them.
var Symptoms = []Symptom{
	{
		Name:    "kubectl-top",
		Summary: `kubectl top says "Metrics API not available" (or an HPA on CPU/memory has no metrics)`,
		// The request's path: the API server, its aggregator and the
		// APIService, metrics-server, which scrapes the kubelet.
		Chain: []string{"api.access", "metrics-server.apiservice", "metrics-server.node", "kubelet.reachable", "kubelet.tls"},
	},
	{
		Name:    "container-graphs",
		Summary: "container graphs (CPU, memory of pods) are empty",
		// The data's path: cgroups, pod names from the kubelet, the agent,
		// Prometheus' jobs.
		Chain: []string{"host.cgroup", "containers.cgroups", "kubelet.reachable", "kubelet.tls", "kubelet.auth", "kubelet.rbac.pods", "containers.pods",
			"prometheus.scraped", "prometheus.targets", "prometheus.jobs"},
	},
	{
		Name:    "pod-missing",
		Summary: "a pod is missing from the dashboards (give --pod namespace/name)",
		Chain: []string{"kubelet.reachable", "kubelet.tls", "kubelet.auth", "kubelet.rbac.pods", "pod.on-node", "host.cgroup", "containers.cgroups", "pod.cgroups",
			"prometheus.scraped", "prometheus.targets", "pod.series"},
	},
	{
		Name:    "kubelet-403",
		Summary: "the kubelet's metrics answer 403 Forbidden",
		Chain:   []string{"kubelet.reachable", "kubelet.tls", "kubelet.auth", "kubelet.rbac.metrics", "kubelet.rbac.pods", "prometheus.targets"},
	},
}

// symptom is a Symptom being diagnosed.
type symptom struct {
	Symptom
	ns, pod string
}

func findSymptom(name, pod string) (*symptom, error) {
	for _, s := range Symptoms {
		if s.Name != name {
			continue
		}
		sym := &symptom{Symptom: s}
		switch {
		case name == "pod-missing":
			ns, p, ok := strings.Cut(pod, "/")
			if !ok || ns == "" || p == "" || strings.Contains(p, "/") {
				return nil, fmt.Errorf("%w: pod-missing needs --pod namespace/name, got %q", ErrUsage, pod)
			}
			sym.ns, sym.pod = ns, p
		case pod != "":
			return nil, fmt.Errorf("%w: --pod goes with pod-missing only", ErrUsage)
		}
		return sym, nil
	}
	var names []string
	for _, s := range Symptoms {
		names = append(names, s.Name)
	}
	return nil, fmt.Errorf("%w: unknown symptom %q; one of %s", ErrUsage, name, strings.Join(names, ", "))
}

// checks are the chain's checks, the pod checks bound to the pod.
func (s *symptom) checks() []check {
	byID := map[string]check{}
	for _, c := range allChecks() {
		byID[c.id] = c
	}
	for _, c := range s.podChecks() {
		byID[c.id] = c
	}
	out := make([]check, 0, len(s.Chain))
	for _, id := range s.Chain {
		out = append(out, byID[id])
	}
	return out
}

// Conclusion is what doctor why concludes.
type Conclusion struct {
	Symptom string
	Chain   []string
	// Verdict is the silent layer's (fail, or warn when nothing fails), or
	// ok when every check that ran is ok.
	Verdict Verdict
	// Check and Layer name the silent layer; empty when none was found.
	Check       string
	Layer       Layer
	Detail, Fix string
}

func (s *symptom) conclude(results []Result) *Conclusion {
	c := &Conclusion{Symptom: s.Name, Chain: s.Chain, Verdict: OK}
	for _, want := range []Verdict{Fail, Warn} {
		for _, r := range results {
			if r.Verdict == want {
				c.Verdict, c.Check, c.Layer, c.Detail, c.Fix = want, r.ID, r.Layer, r.Detail, r.Fix
				return c
			}
		}
	}
	var skipped []string
	for _, r := range results {
		if r.Verdict == Skipped {
			skipped = append(skipped, r.ID)
		}
	}
	c.Detail = "no silent layer among the checks that ran"
	if len(skipped) > 0 {
		c.Detail += fmt.Sprintf("; %d could not run (%s): their details say what they need", len(skipped), strings.Join(skipped, ", "))
	}
	return c
}

// podChecks follow one pod through the layers.
func (s *symptom) podChecks() []check {
	return []check{
		{"pod.on-node", LayerKubelet, s.checkPodOnNode},
		{"pod.cgroups", LayerContainers, s.checkPodCgroups},
		{"pod.series", LayerPrometheus, s.checkPodSeries},
	}
}

func (s *symptom) name() string { return s.ns + "/" + s.pod }

// findPod returns the pod's UID from the kubelet's /pods.
func (s *symptom) findPod(ctx context.Context, d *doctor) (string, int, *outcome) {
	_, errs, skip := d.kubeletAnswers(ctx)
	if skip != nil {
		return "", 0, skip
	}
	if errs[1] != nil {
		o := skipf("no pod list from the kubelet: see kubelet.rbac.pods")
		return "", 0, &o
	}
	pr, _ := d.kubeletPods.get(ctx)
	for uid, p := range pr.snap.Pods {
		if p.Namespace == s.ns && p.Name == s.pod {
			return uid, len(pr.snap.Pods), nil
		}
	}
	return "", len(pr.snap.Pods), nil
}

func (s *symptom) checkPodOnNode(ctx context.Context, d *doctor) outcome {
	uid, n, skip := s.findPod(ctx, d)
	if skip != nil {
		return *skip
	}
	if uid == "" {
		return fail(fmt.Sprintf("pod %s is not on this node: the kubelet's /pods lists %d pods, not this one", s.name(), n),
			fmt.Sprintf("kubectl get pod -n %s %s -o wide names its node; run doctor there (kubectl exec into the nodeagent pod on that node)", s.ns, s.pod))
	}
	kc, _ := d.kubelet.get(ctx)
	containers := 0
	pr, _ := d.kubeletPods.get(ctx)
	for _, c := range pr.snap.Containers {
		if c.PodUID == uid {
			containers++
		}
	}
	return okf("pod %s (uid %s) is a pod of the kubelet at %s, with %d containers running or run", s.name(), uid, kc.URLOf("/"), containers)
}

func (s *symptom) checkPodCgroups(ctx context.Context, d *doctor) outcome {
	uid, _, skip := s.findPod(ctx, d)
	if skip != nil {
		return *skip
	}
	if uid == "" {
		return skipf("the pod is not on this node: see pod.on-node")
	}
	w, err := d.walk.get(ctx)
	if err != nil {
		return skipf("no cgroup walk: see host.cgroup and containers.cgroups (%v)", err)
	}
	pr, _ := d.kubeletPods.get(ctx)
	var podPath string
	leaves := map[string]bool{}
	for _, e := range w.entries {
		if e.PodUID != uid {
			continue
		}
		switch e.Kind {
		case cgroup.KindPod:
			podPath = e.Path
		case cgroup.KindContainer:
			leaves[e.ContainerID] = true
		}
	}
	if podPath == "" {
		return fail(fmt.Sprintf("pod %s (uid %s) has no cgroup under %s: it is not running (pending, or every container exited), or its cgroups are in another hierarchy", s.name(), uid, d.opts.CgroupFS),
			fmt.Sprintf("kubectl get pod -n %s %s shows its phase; if it runs, see containers.cgroups", s.ns, s.pod))
	}
	var missing []string
	running := 0
	for id, c := range pr.snap.Containers {
		if c.PodUID != uid {
			continue
		}
		running++
		if !leaves[id] {
			missing = append(missing, c.Name)
		}
	}
	if len(missing) > 0 && len(missing) == running {
		return warn(fmt.Sprintf("pod %s has its cgroup %s, but none of its containers (%s) has a cgroup there: they exited (init containers) or the runtime names them otherwise", s.name(), podPath, strings.Join(missing, ", ")),
			"see containers.cgroups")
	}
	return okf("pod %s has its cgroup %s with %d container cgroups (sandbox included)", s.name(), podPath, len(leaves))
}

func (s *symptom) checkPodSeries(ctx context.Context, d *doctor) outcome {
	if d.opts.Prometheus.URL == "" {
		return skipf("no --prometheus.url")
	}
	c, err := api.NewClient(api.Config{Address: d.opts.Prometheus.URL})
	if err != nil {
		return fail(fmt.Sprintf("--prometheus.url: %v", err), "")
	}
	p := promv1.NewAPI(c)
	count := func(q string) (int, error) {
		v, _, _, err := p.Query(ctx, q, d.opts.Now())
		if err != nil {
			return 0, fmt.Errorf("query %s: %w", q, err)
		}
		vec, _ := v.(model.Vector)
		if len(vec) == 0 {
			return 0, nil
		}
		return int(vec[0].Value), nil
	}
	const metric = "container_cpu_usage_seconds_total"
	n, err := count(fmt.Sprintf("count(%s{namespace=%q,pod=%q})", metric, s.ns, s.pod))
	if err != nil {
		return fail(fmt.Sprintf("Prometheus did not answer: %v", err), "check --prometheus.url")
	}
	if n > 0 {
		return okf("Prometheus has %d %s series of pod %s", n, metric, s.name())
	}
	if m, err := count(fmt.Sprintf("count(%s{exported_namespace=%q,exported_pod=%q})", metric, s.ns, s.pod)); err == nil && m > 0 {
		return fail(fmt.Sprintf("Prometheus has %d %s series of pod %s, but under exported_namespace and exported_pod: the scrape job overwrote the series' own namespace and pod labels with the target's", m, metric, s.name()),
			"set honorLabels: true on the ServiceMonitor endpoint of /metrics/cadvisor (honor_labels in a static job)")
	}
	return fail(fmt.Sprintf("Prometheus has no %s series of pod %s", metric, s.name()),
		"with the layers below ok, the scrape job drops them: check its metric_relabel_configs (metricRelabelings) and that the job scrapes /metrics/cadvisor or /metrics of this node (prometheus.jobs)")
}
