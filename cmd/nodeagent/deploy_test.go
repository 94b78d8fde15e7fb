package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// deployObjects decodes every manifest under deploy/kubernetes.
func deployObjects(t *testing.T) []runtime.Object {
	t.Helper()
	files, err := filepath.Glob("../../deploy/kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []runtime.Object
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out = append(out, obj)
		}
	}
	return out
}

// TestDeployLeastPrivilege checks the DaemonSet, RBAC and NetworkPolicy
// against the security contract, and that every flag in the manifest exists.
func TestDeployLeastPrivilege(t *testing.T) {
	t.Parallel()
	var ds *appsv1.DaemonSet
	var roles []*rbacv1.ClusterRole
	var secrets []*corev1.Secret
	for _, obj := range deployObjects(t) {
		switch o := obj.(type) {
		case *appsv1.DaemonSet:
			ds = o
		case *rbacv1.ClusterRole:
			roles = append(roles, o)
		case *corev1.Secret:
			secrets = append(secrets, o)
		}
	}
	if ds == nil || len(roles) != 1 || len(secrets) != 1 {
		t.Fatalf("want one DaemonSet, one ClusterRole, one example web-config Secret; got %v, %d, %d", ds != nil, len(roles), len(secrets))
	}

	pod := ds.Spec.Template.Spec
	// The node's /proc/net files describe the namespace of their reader, so
	// the agent shares the host's network namespace, as node_exporter's
	// DaemonSet does; PID for the pods' network namespaces; never IPC.
	if !pod.HostPID || !pod.HostNetwork || pod.HostIPC {
		t.Errorf("host namespaces: pid=%v network=%v ipc=%v; want PID and network", pod.HostPID, pod.HostNetwork, pod.HostIPC)
	}
	psc := pod.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
		t.Error("pod must run as a non-root user")
	}
	if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod must use the RuntimeDefault seccomp profile")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("container has no securityContext")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("allowPrivilegeEscalation must be false")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("readOnlyRootFilesystem must be true")
	case sc.Privileged != nil && *sc.Privileged:
		t.Error("container must not be privileged")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Error("capabilities: drop ALL, add none")
	}
	for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[res]; !ok {
			t.Errorf("no %s request", res)
		}
		if _, ok := c.Resources.Limits[res]; !ok {
			t.Errorf("no %s limit", res)
		}
	}
	hostPaths := map[string]bool{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = true
		}
	}
	for _, m := range c.VolumeMounts {
		if hostPaths[m.Name] && !m.ReadOnly {
			t.Errorf("hostPath volume %s is mounted read-write", m.Name)
		}
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "health" {
			t.Errorf("%s probe must use the plain health port (probes carry no client certificate)", name)
		}
	}
	// Every flag the manifest passes exists and parses.
	parseServe(t, c.Args...)

	wantRule := rbacv1.PolicyRule{
		APIGroups: []string{""},
		Resources: []string{"nodes/metrics", "nodes/stats", "nodes/pods", "nodes/healthz"},
		Verbs:     []string{"get"},
	}
	if len(roles[0].Rules) != 1 || !equalRule(roles[0].Rules[0], wantRule) {
		t.Errorf("ClusterRole rules %+v, want exactly %+v (no nodes/proxy, no wildcards)", roles[0].Rules, wantRule)
	}

	// In the host network no NetworkPolicy applies: the example web config
	// must require client certificates.
	var webConfig struct {
		TLS struct {
			ClientAuth string `json:"client_auth_type"`
			ClientCA   string `json:"client_ca_file"`
		} `json:"tls_server_config"`
	}
	if err := yaml.Unmarshal([]byte(secrets[0].StringData["web-config.yml"]), &webConfig); err != nil {
		t.Fatal(err)
	}
	if webConfig.TLS.ClientAuth != "RequireAndVerifyClientCert" || webConfig.TLS.ClientCA == "" {
		t.Errorf("example web config: client_auth_type %q, client_ca_file %q; want client certificates required", webConfig.TLS.ClientAuth, webConfig.TLS.ClientCA)
	}
	var memLimit bool
	for _, e := range c.Env {
		memLimit = memLimit || e.Name == "GOMEMLIMIT"
	}
	if !memLimit {
		t.Error("no GOMEMLIMIT: the heap may grow to twice its live size")
	}
}

func equalRule(a, b rbacv1.PolicyRule) bool {
	s := func(x []string) []string { x = slices.Clone(x); slices.Sort(x); return x }
	return slices.Equal(s(a.APIGroups), s(b.APIGroups)) && slices.Equal(s(a.Resources), s(b.Resources)) &&
		slices.Equal(s(a.Verbs), s(b.Verbs)) && len(a.ResourceNames) == 0 && len(a.NonResourceURLs) == 0
}

// TestServiceMonitorPaths: every path the example ServiceMonitor scrapes is
// one nodeagent serves, relabelled to the job the mixins select.
func TestServiceMonitorPaths(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../deploy/prometheus/servicemonitor.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var sm struct {
		Spec struct {
			Endpoints []struct {
				Path        string `json:"path"`
				Relabelings []struct {
					TargetLabel string `json:"targetLabel"`
					Replacement string `json:"replacement"`
				} `json:"relabelings"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(b, &sm); err != nil {
		t.Fatal(err)
	}
	served := map[string]bool{}
	for _, ep := range planEndpoints(nil) {
		served[ep.path] = true
	}
	wantJob := map[string]string{
		"/metrics/node": "node-exporter", "/metrics/cadvisor": "kubelet", "/metrics/kubelet": "kubelet",
		"/metrics/probes": "kubelet", "/metrics/nodeagent": "nodeagent",
	}
	for _, ep := range sm.Spec.Endpoints {
		if !served[ep.Path] {
			t.Errorf("ServiceMonitor scrapes %s, which nodeagent does not serve", ep.Path)
		}
		job := ""
		for _, r := range ep.Relabelings {
			if r.TargetLabel == "job" {
				job = r.Replacement
			}
		}
		if job != wantJob[ep.Path] {
			t.Errorf("%s is relabelled job=%q, want %q", ep.Path, job, wantJob[ep.Path])
		}
	}
	if len(sm.Spec.Endpoints) != len(wantJob) {
		t.Errorf("%d endpoints, want %d", len(sm.Spec.Endpoints), len(wantJob))
	}
}

// TestSystemdUnit: the unit runs unprivileged and its flags parse.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../deploy/systemd/nodeagent.service")
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[k] = v
		}
	}
	for k, want := range map[string]string{"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "ProtectSystem": "strict", "User": "nodeagent"} {
		if got, ok := settings[k]; !ok || got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	exec := strings.Fields(settings["ExecStart"])
	var args []string
	for _, a := range exec[1:] {
		if !strings.HasPrefix(a, "$") {
			args = append(args, a)
		}
	}
	parseServe(t, args...)
}
