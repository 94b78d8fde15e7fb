package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/streaming/pkg/httpstream"
)

// doctorReport is `nodeagent doctor -o json`, schema version 1, as
// docs/troubleshooting.md documents it. The doctor package's own JSON types
// are unexported, so the test decodes the documented fields itself: what a
// script using the schema would see.
type doctorReport struct {
	Version          int           `json:"version"`
	NodeagentVersion string        `json:"nodeagent_version"`
	Node             string        `json:"node"`
	FlagsFrom        string        `json:"flags_from"`
	DurationSeconds  float64       `json:"duration_seconds"`
	Checks           []doctorCheck `json:"checks"`
	Summary          struct {
		OK       int `json:"ok"`
		Warn     int `json:"warn"`
		Fail     int `json:"fail"`
		Skipped  int `json:"skipped"`
		ExitCode int `json:"exit_code"`
	} `json:"summary"`
	Symptom *struct {
		Name    string   `json:"name"`
		Chain   []string `json:"chain"`
		Verdict string   `json:"verdict"`
		Check   string   `json:"check"`
		Layer   string   `json:"layer"`
		Detail  string   `json:"detail"`
		Fix     string   `json:"fix"`
	} `json:"symptom"`
}

type doctorCheck struct {
	ID      string `json:"id"`
	Layer   string `json:"layer"`
	Verdict string `json:"verdict"`
	Detail  string `json:"detail"`
	Fix     string `json:"fix"`
}

// The schema's top-level fields, each always present (docs/troubleshooting.md).
var doctorFields = []string{"version", "nodeagent_version", "node", "flags_from", "duration_seconds", "checks", "summary", "symptom"}

// decodeDoctor decodes doctor's standard output and checks the schema's
// invariants: every documented field present, version 1, the summary's
// counts and exit code agreeing with the checks.
func decodeDoctor(out []byte) (*doctorReport, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(out, &fields); err != nil {
		return nil, fmt.Errorf("doctor's output is not a JSON object: %w: %.500s", err, out)
	}
	for _, f := range doctorFields {
		if _, ok := fields[f]; !ok {
			return nil, fmt.Errorf("doctor's JSON lacks the field %q", f)
		}
	}
	var r doctorReport
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("doctor's JSON does not decode by the documented schema: %w", err)
	}
	if r.Version != 1 {
		return nil, fmt.Errorf("schema version %d; the test knows version 1", r.Version)
	}
	n := map[string]int{}
	for _, c := range r.Checks {
		n[c.Verdict]++
	}
	s := r.Summary
	if n["ok"] != s.OK || n["warn"] != s.Warn || n["fail"] != s.Fail || n["skipped"] != s.Skipped || len(r.Checks) != s.OK+s.Warn+s.Fail+s.Skipped {
		return nil, fmt.Errorf("summary %+v disagrees with the checks' verdicts %v", s, n)
	}
	if want := map[bool]int{true: 1, false: 0}[s.Fail > 0]; s.ExitCode != want {
		return nil, fmt.Errorf("summary exit_code %d with %d failing checks; want %d", s.ExitCode, s.Fail, want)
	}
	return &r, nil
}

// execInPod runs cmd in the pod's container through the API server, as
// kubectl exec does (client-go's WebSocket executor, falling back to SPDY
// when the server cannot upgrade to WebSockets), and returns its standard
// output and error and its exit code.
func (e *e2eEnv) execInPod(pod *corev1.Pod, container string, cmd []string) (stdout, stderr []byte, code int, err error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", e.env["KUBECONFIG"])
	if err != nil {
		return nil, nil, 0, err
	}
	req := e.cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(pod.Namespace).Name(pod.Name).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: cmd, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ex, err := newExecutor(cfg, req)
	if err != nil {
		return nil, nil, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var o, se bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &o, Stderr: &se})
	var exit utilexec.ExitError
	if errors.As(err, &exit) {
		// The command ran and exited non-zero: its exit code is the answer.
		return o.Bytes(), se.Bytes(), exit.ExitStatus(), nil
	}
	return o.Bytes(), se.Bytes(), 0, err
}

// newExecutor is kubectl exec's executor: WebSockets first (RFC 6455
// wants GET), SPDY (POST) when the upgrade fails.
func newExecutor(cfg *rest.Config, req *rest.Request) (remotecommand.Executor, error) {
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", req.URL())
	if err != nil {
		return nil, err
	}
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", req.URL().String())
	if err != nil {
		return nil, err
	}
	return remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
}

// runDoctor execs /bin/nodeagent with args (which ask for -o json) in the
// agent's pod, logs its output as it came and decodes it; the process's
// exit code must be the one the JSON reports.
func (e *e2eEnv) runDoctor(t *testing.T, pod *corev1.Pod, args ...string) (*doctorReport, error) {
	cmd := append([]string{"/bin/nodeagent"}, args...)
	out, stderr, code, err := e.execInPod(pod, "nodeagent", cmd)
	if err != nil {
		return nil, fmt.Errorf("exec %s in %s/%s: %w (stderr %q)", strings.Join(cmd, " "), pod.Namespace, pod.Name, err, stderr)
	}
	t.Logf("kubectl exec -n %s %s -- %s: exit code %d\n%s%s", pod.Namespace, pod.Name, strings.Join(cmd, " "), code, out, stderr)
	r, err := decodeDoctor(out)
	if err != nil {
		return nil, fmt.Errorf("%s (exit code %d, stderr %q): %w", strings.Join(cmd, " "), code, stderr, err)
	}
	if code != r.Summary.ExitCode {
		return nil, fmt.Errorf("%s exited %d, its JSON says exit_code %d (stderr %q)", strings.Join(cmd, " "), code, r.Summary.ExitCode, stderr)
	}
	return r, nil
}

// expectation is a check's verdict in this harness, and what its detail
// must say.
type expectation struct {
	verdict string
	detail  []string
}

// doctorExpectations are the verdicts of every check doctor runs in the
// Helm release's pod of this harness, and why each is what it is. A check
// doctor gains must be added here: the test fails on a check it does not
// expect, so that a new check is proved in a pod too.
//
// promURL is doctor's --prometheus.url, "" for none.
func (e *e2eEnv) doctorExpectations(promURL string) map[string]expectation {
	m := map[string]expectation{
		// The pod mounts the host's /proc, /sys and / and runs in the
		// host's PID and network namespaces (the chart's DaemonSet).
		"host.procfs":  {"ok", nil},
		"host.sysfs":   {"ok", nil},
		"host.rootfs":  {"ok", nil},
		"host.network": {"ok", nil},
		// host.cgroup and host.psi are the host's own: judged below from
		// the machine the test runs on, which is the node.
		"host.cgroup": hostCgroupExpectation(),
		"host.psi":    hostPSIExpectation(),
		// The harness' kubelet uses the cgroupfs driver and containerd;
		// its pods (the agent's own, the static ones) have cgroups that
		// the kubelet's /pods names.
		"containers.cgroups": {"ok", []string{"kubepods"}},
		"containers.pods":    {"ok", nil},
		// The agent is given --kubelet.url at the kubelet's loopback
		// port (harnessArgs) and no --kubelet.insecure-skip-verify: the
		// kubelet's serving certificate, issued by the cluster's CA for
		// 127.0.0.1, verifies against the pod's service-account CA. The
		// pod's token is the agent's kubelet credential, allowed
		// nodes/metrics and nodes/pods by the chart's ClusterRole.
		"kubelet.reachable":    {"ok", []string{e.env["KUBELET_URL"]}},
		"kubelet.tls":          {"ok", nil},
		"kubelet.auth":         {"ok", nil},
		"kubelet.rbac.metrics": {"ok", nil},
		"kubelet.rbac.pods":    {"ok", nil},
		// The harness' kubelet runs with readOnlyPort 0 and anonymous
		// authentication off, until the read-only port step opens it
		// (after this one).
		"kubelet.readonly-port":  {"ok", nil},
		"kubelet.anonymous-auth": {"ok", nil},
		// KUBERNETES_SERVICE_HOST/PORT point the pod's in-cluster
		// configuration at the API server's loopback address.
		"api.access": {"ok", []string{"system:serviceaccount:" + agentNamespace + ":" + agentRelease}},
		// No metrics-server in the harness: the APIService is missing,
		// which is exactly kubectl top's "Metrics API not available";
		// the node's metrics are then not asked for.
		"metrics-server.apiservice": {"fail", []string{"the APIService v1beta1.metrics.k8s.io is missing"}},
		"metrics-server.node":       {"skipped", []string{"see metrics-server.apiservice"}},
		// kube-state-metrics runs, but as a host process of the test
		// (monitoring_test.go, with the admin kubeconfig) that Prometheus
		// scrapes at its loopback port: there is no Deployment or Service
		// of it in the cluster, so doctor cannot find it and warns, which
		// is right. The chart's doctor ClusterRole lists Services only
		// (doctor.rbac.listDeployments is off by default), so the warning
		// also says Deployments were not looked at; Services were.
		"kube-state-metrics.present": {"warn", []string{"no Service labelled app.kubernetes.io/name=kube-state-metrics in any namespace", "Deployments were not looked at"}},
		// No custom or external metrics adapter: absent is fine.
		"metrics-adapters.custom":   {"ok", []string{"no custom adapter"}},
		"metrics-adapters.external": {"ok", []string{"no external adapter"}},
		// Prometheus has scraped every endpoint (the step before), so the
		// agent's last scrape is recent; doctor reads it over
		// https://127.0.0.1:9812 with the pod's token, which the doctor
		// ClusterRole allows /metrics/nodeagent.
		"prometheus.scraped": {"ok", nil},
		// Without --prometheus.url there is no Prometheus to ask.
		"prometheus.targets": {"skipped", []string{"no --prometheus.url"}},
		"prometheus.jobs":    {"skipped", []string{"no --prometheus.url"}},
	}
	if promURL != "" {
		// The test's Prometheus, on the operator's configuration, listens
		// on the node's loopback, which the pod shares (host network).
		// Every target of the node is up (the step before), and the
		// ServiceMonitor relabels the agent's paths into the stock jobs.
		m["prometheus.targets"] = expectation{"ok", []string{"targets of node " + e.env["KUBELET_NODE_NAME"] + " are up"}}
		m["prometheus.jobs"] = expectation{"ok", []string{"job=node-exporter", "job=kubelet metrics_path=/metrics/cadvisor", "job=kubelet metrics_path=/metrics/probes"}}
	}
	return m
}

// hostCgroupExpectation: doctor's host.cgroup verdict for this machine's
// cgroup layout, read here the way the kernel reports it. A unified
// (cgroup v2 only) host is ok; a hybrid one (v1 controllers, cgroup2 at
// /sys/fs/cgroup/unified) warns, since the container layer then lacks the
// v1-bound controllers' families (docs/troubleshooting.md).
func hostCgroupExpectation() expectation {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return expectation{"ok", nil}
	}
	if err := unix.Statfs("/sys/fs/cgroup/unified", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return expectation{"warn", []string{"hybrid"}}
	}
	// v1 only: the container layer has no cgroup v2 to walk.
	return expectation{"fail", nil}
}

// hostPSIExpectation: PSI is ok where the kernel has it on (the files of
// /proc/pressure read), else doctor warns.
func hostPSIExpectation() expectation {
	for _, f := range []string{"cpu", "memory", "io"} {
		if _, err := os.ReadFile("/proc/pressure/" + f); err != nil {
			return expectation{"warn", nil}
		}
	}
	return expectation{"ok", nil}
}

// checkDoctorReport compares a plain run's report with the expectations
// and returns the table's detail: the counts and what does not pass.
func (e *e2eEnv) checkDoctorReport(r *doctorReport, promURL string) (string, error) {
	want := e.doctorExpectations(promURL)
	var errs []string
	seen := map[string]bool{}
	for _, c := range r.Checks {
		seen[c.ID] = true
		x, ok := want[c.ID]
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: a check the test does not expect (%s: %s): add its verdict in this harness to doctorExpectations", c.ID, c.Verdict, c.Detail))
			continue
		}
		if c.Verdict != x.verdict {
			errs = append(errs, fmt.Sprintf("%s: %s, want %s: %s (fix: %s)", c.ID, c.Verdict, x.verdict, c.Detail, c.Fix))
			continue
		}
		for _, s := range x.detail {
			if !strings.Contains(c.Detail, s) {
				errs = append(errs, fmt.Sprintf("%s: detail %q does not say %q", c.ID, c.Detail, s))
			}
		}
		// The chart's doctor ClusterRole is bound to the pod's account:
		// no cluster check may find it cannot read what the role grants.
		for _, s := range []string{"may not read", "may not get", "may not list Services"} {
			if strings.Contains(c.Detail, s) {
				errs = append(errs, fmt.Sprintf("%s: %q: the <release>-doctor ClusterRole does not grant what doctor reads: %s", c.ID, s, c.Detail))
			}
		}
	}
	for id := range want {
		if !seen[id] {
			errs = append(errs, id+": not in the report")
		}
	}
	// The running agent's flags (--path.procfs=/host/proc, …) are what
	// make the host checks look at the host: doctor must have found it.
	if !strings.HasPrefix(r.FlagsFrom, "pid ") {
		errs = append(errs, fmt.Sprintf("flags_from %q: doctor did not find the agent beside it in the pod", r.FlagsFrom))
	}
	if r.Node != e.env["KUBELET_NODE_NAME"] {
		errs = append(errs, fmt.Sprintf("node %q; want %s (NODE_NAME of the pod)", r.Node, e.env["KUBELET_NODE_NAME"]))
	}
	// Documented: the exit code is 1 because metrics-server fails.
	if r.Summary.ExitCode != 1 {
		errs = append(errs, fmt.Sprintf("exit code %d; want 1 (metrics-server.apiservice fails)", r.Summary.ExitCode))
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return "", errors.New(strings.Join(errs, "; "))
	}
	return doctorDetail(r), nil
}

// doctorDetail is a report in one line: the counts, what fails and warns.
func doctorDetail(r *doctorReport) string {
	s := r.Summary
	var notOK []string
	for _, c := range r.Checks {
		if c.Verdict == "fail" || c.Verdict == "warn" {
			notOK = append(notOK, c.Verdict+" "+c.ID)
		}
	}
	return fmt.Sprintf("%d ok, %d warn, %d fail, %d skipped, exit %d in %.2fs, flags of %s: %s",
		s.OK, s.Warn, s.Fail, s.Skipped, s.ExitCode, r.DurationSeconds, r.FlagsFrom, strings.Join(notOK, ", "))
}

// testDoctor runs `nodeagent doctor` in the Helm release's pod, as
// docs/troubleshooting.md tells a user to (kubectl exec): as a table and
// in JSON, then with the test's Prometheus, then for kubectl top's
// symptom.
func (e *e2eEnv) testDoctor(t *testing.T, sum *summary, prom *monitoring) {
	var pod *corev1.Pod
	sum.step(t, "helm: doctor in the pod", func(t *testing.T) (string, error) {
		p, err := e.waitAgentReady(time.Minute)
		if err != nil {
			return "", err
		}
		pod = p
		// The documented command as a person runs it: the table.
		cmd := []string{"/bin/nodeagent", "doctor"}
		table, stderr, code, err := e.execInPod(p, "nodeagent", cmd)
		if err != nil {
			return "", fmt.Errorf("exec %s: %w (stderr %q)", strings.Join(cmd, " "), err, stderr)
		}
		t.Logf("kubectl exec -n %s %s -- %s: exit code %d\n%s%s", p.Namespace, p.Name, strings.Join(cmd, " "), code, table, stderr)
		r, err := e.runDoctor(t, p, "doctor", "-o", "json")
		if err != nil {
			return "", err
		}
		detail, err := e.checkDoctorReport(r, "")
		if err != nil {
			return "", err
		}
		// The table says what the JSON says (two runs a moment apart on
		// a cluster that does not change in between).
		s := r.Summary
		line := fmt.Sprintf("summary: %d ok, %d warn, %d fail, %d skipped\n", s.OK, s.Warn, s.Fail, s.Skipped)
		failing := false
		for _, l := range strings.Split(string(table), "\n") {
			if f := strings.Fields(l); len(f) > 2 && f[0] == "fail" && f[1] == "metrics-server.apiservice" {
				failing = true
			}
		}
		if code != s.ExitCode || !bytes.Contains(table, []byte(line)) || !failing {
			return "", fmt.Errorf("%s exited %d and printed a table without %q or a failing metrics-server.apiservice; the JSON run exited %d", strings.Join(cmd, " "), code, strings.TrimSpace(line), s.ExitCode)
		}
		return detail, nil
	})
	if pod == nil {
		sum.skip("helm: doctor --prometheus.url, why kubectl-top", "no agent pod to exec in")
		return
	}
	sum.step(t, "helm: doctor --prometheus.url", func(t *testing.T) (string, error) {
		r, err := e.runDoctor(t, pod, "doctor", "-o", "json", "--prometheus.url="+prom.prometheusURL)
		if err != nil {
			return "", err
		}
		detail, err := e.checkDoctorReport(r, prom.prometheusURL)
		if err != nil {
			return "", err
		}
		by := map[string]string{}
		for _, c := range r.Checks {
			by[c.ID] = c.Detail
		}
		return detail + "; " + by["prometheus.targets"], nil
	})
	sum.step(t, "helm: doctor why kubectl-top", func(t *testing.T) (string, error) {
		r, err := e.runDoctor(t, pod, "doctor", "why", "kubectl-top", "-o", "json")
		if err != nil {
			return "", err
		}
		s := r.Symptom
		if s == nil {
			return "", errors.New("doctor why kubectl-top: symptom is null")
		}
		wantChain := []string{"api.access", "metrics-server.apiservice", "metrics-server.node", "kubelet.reachable", "kubelet.tls"}
		var ids []string
		for _, c := range r.Checks {
			ids = append(ids, c.ID)
		}
		switch {
		case s.Name != "kubectl-top":
			return "", fmt.Errorf("symptom %q; want kubectl-top", s.Name)
		case strings.Join(s.Chain, " ") != strings.Join(wantChain, " ") || strings.Join(ids, " ") != strings.Join(wantChain, " "):
			return "", fmt.Errorf("chain %v, checks %v; want %v (docs/troubleshooting.md)", s.Chain, ids, wantChain)
		case s.Verdict != "fail" || s.Check != "metrics-server.apiservice" || s.Layer != "metrics-server":
			return "", fmt.Errorf("silent layer %s (%s, %s): %s; want metrics-server.apiservice failing", s.Layer, s.Check, s.Verdict, s.Detail)
		case !strings.Contains(s.Detail, "v1beta1.metrics.k8s.io") || !strings.Contains(s.Fix, "install metrics-server"):
			return "", fmt.Errorf("conclusion %q, fix %q: want the missing APIService v1beta1.metrics.k8s.io and installing metrics-server", s.Detail, s.Fix)
		case r.Summary.ExitCode != 1:
			return "", fmt.Errorf("exit code %d; want 1", r.Summary.ExitCode)
		}
		return fmt.Sprintf("silent layer %s (%s): %.80s…; %d ok, %d fail, %d skipped, exit %d",
			s.Layer, s.Check, s.Detail, r.Summary.OK, r.Summary.Fail, r.Summary.Skipped, r.Summary.ExitCode), nil
	})
}
