package deploy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/nodeagent/nodeagent/internal/manifests"
)

// rule is a PolicyRule compared as sets.
type rule struct {
	groups, resources, urls, verbs string
}

func normRules(rs []rbacv1.PolicyRule) []rule {
	j := func(x []string) string { x = slices.Clone(x); slices.Sort(x); return strings.Join(x, ",") }
	var out []rule
	for _, r := range rs {
		if len(r.ResourceNames) > 0 {
			out = append(out, rule{groups: "resourceNames not allowed"})
			continue
		}
		out = append(out, rule{j(r.APIGroups), j(r.Resources), j(r.NonResourceURLs), j(r.Verbs)})
	}
	slices.SortFunc(out, func(a, b rule) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	return out
}

// agentRules is the agent's ClusterRole, exactly: get on the two kubelet
// subresources it reads (docs/kubelet.md: nodes/stats and nodes/healthz are
// not used), nodes/proxy only as the opt-in for old kubelets, and create on
// the two reviews only with the scraper authentication that uses them.
func agentRules(auth, legacyProxy bool) []rbacv1.PolicyRule {
	rs := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/metrics", "nodes/pods"}, Verbs: []string{"get"}}}
	if legacyProxy {
		rs = append(rs, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes/proxy"}, Verbs: []string{"get"}})
	}
	if auth {
		rs = append(rs,
			rbacv1.PolicyRule{APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}, Verbs: []string{"create"}},
			rbacv1.PolicyRule{APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews"}, Verbs: []string{"create"}})
	}
	return rs
}

// TestLeastPrivilegeRBAC: the agent's ClusterRole is exactly agentRules,
// bound to the DaemonSet's service account only; the scrapers get only get
// on /metrics and /metrics/*, and only with scraper authentication on.
func TestLeastPrivilegeRBAC(t *testing.T) {
	forEachVariant(t, func(t *testing.T, r *rendered) {
		sa := r.ds.Spec.Template.Spec.ServiceAccountName
		if sa != r.serviceAccounts[0].Name {
			t.Fatalf("DaemonSet runs as %q, the ServiceAccount is %q", sa, r.serviceAccounts[0].Name)
		}
		var agentRole string
		doctorRole := sa + "-doctor"
		doctorBound := false
		for _, b := range r.clusterBindings {
			if b.RoleRef.Name == doctorRole {
				doctorBound = true
				if len(b.Subjects) != 1 || b.Subjects[0].Kind != "ServiceAccount" || b.Subjects[0].Name != sa || b.Subjects[0].Namespace != r.ds.Namespace {
					t.Errorf("ClusterRoleBinding %s binds %+v, want the agent's service account alone", b.Name, b.Subjects)
				}
				continue
			}
			for _, s := range b.Subjects {
				if s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == r.ds.Namespace {
					if agentRole != "" {
						t.Errorf("the agent's service account is bound to two ClusterRoles: %s and %s", agentRole, b.RoleRef.Name)
					}
					agentRole = b.RoleRef.Name
					if len(b.Subjects) != 1 {
						t.Errorf("ClusterRoleBinding %s binds %d subjects, want the agent's alone", b.Name, len(b.Subjects))
					}
				}
			}
		}
		role := r.clusterRoles[agentRole]
		if role == nil {
			t.Fatalf("the agent's service account is bound to no rendered ClusterRole (%q)", agentRole)
		}
		if diff := cmp.Diff(normRules(agentRules(r.auth, r.legacyProxy)), normRules(role.Rules), cmp.AllowUnexported(rule{})); diff != "" {
			t.Errorf("ClusterRole %s rules (-want +got):\n%s", role.Name, diff)
		}
		// doctor's ClusterRole is the one docs/troubleshooting.md lists,
		// without Deployments unless asked for, bound to the agent alone.
		if got := r.clusterRoles[doctorRole]; r.noDoctor {
			if got != nil || doctorBound {
				t.Errorf("ClusterRole %s rendered with doctor.rbac.create=false", doctorRole)
			}
		} else if got == nil || !doctorBound {
			t.Errorf("ClusterRole %s rendered: %v, bound: %v; want both", doctorRole, got != nil, doctorBound)
		} else if diff := cmp.Diff(sortedRules(documentedDoctorRules(t, r.doctorDeployments)), sortedRules(got.Rules)); diff != "" {
			t.Errorf("ClusterRole %s differs from docs/troubleshooting.md's nodeagent-doctor (-want +got):\n%s", doctorRole, diff)
		}

		// The flag goes with its review rules (and, in TestServiceMonitor-
		// Endpoints, with the scrapers' bearer tokens).
		if got := hasArg(r.container(t), "--web.kubernetes-auth"); got != r.auth {
			t.Errorf("--web.kubernetes-auth passed: %v; scraper authentication expected: %v", got, r.auth)
		}
		for _, b := range r.roleBindings {
			for _, s := range b.Subjects {
				if s.Name == sa && s.Namespace == r.ds.Namespace {
					t.Errorf("RoleBinding %s grants the agent more", b.Name)
				}
			}
		}

		// The scrapers: get on the metrics URLs when the agent asks the
		// API server about them, and discovery of this namespace only.
		scraperURLs := 0
		for name, cr := range r.clusterRoles {
			if name == agentRole || name == doctorRole {
				continue
			}
			want := []rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics", "/metrics/*"}, Verbs: []string{"get"}}}
			if diff := cmp.Diff(normRules(want), normRules(cr.Rules), cmp.AllowUnexported(rule{})); diff != "" {
				t.Errorf("ClusterRole %s (-want +got):\n%s", name, diff)
			}
			scraperURLs++
		}
		if wantURLs := r.auth && r.monitor; (scraperURLs == 1) != wantURLs || scraperURLs > 1 {
			t.Errorf("%d scraper ClusterRoles; want one exactly when scraper authentication and the ServiceMonitor are on (%v)", scraperURLs, wantURLs)
		}
		for name, role := range r.roles {
			want := []rbacv1.PolicyRule{
				{APIGroups: []string{""}, Resources: []string{"services", "endpoints", "pods"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch"}},
			}
			if diff := cmp.Diff(normRules(want), normRules(role.Rules), cmp.AllowUnexported(rule{})); diff != "" {
				t.Errorf("Role %s (-want +got):\n%s", name, diff)
			}
			if role.Namespace != r.ds.Namespace {
				t.Errorf("Role %s is in namespace %s, not the agent's", name, role.Namespace)
			}
		}
	})
}

// documentedDoctorRules are the rules of the nodeagent-doctor ClusterRole
// in docs/troubleshooting.md, where operators without the chart copy it
// from; without deployments, less the rule listing Deployments.
func documentedDoctorRules(t *testing.T, deployments bool) []rbacv1.PolicyRule {
	t.Helper()
	role, err := manifests.DocumentedClusterRole("../docs/troubleshooting.md", "nodeagent-doctor")
	if err != nil {
		t.Fatal(err)
	}
	if deployments {
		return role.Rules
	}
	return slices.DeleteFunc(role.Rules, func(r rbacv1.PolicyRule) bool { return slices.Contains(r.Resources, "deployments") })
}

// sortedRules orders rules (and the lists in them) so that two roles
// compare equal whatever order they were written in.
func sortedRules(rs []rbacv1.PolicyRule) []rbacv1.PolicyRule {
	out := make([]rbacv1.PolicyRule, 0, len(rs))
	for _, r := range rs {
		r = *r.DeepCopy()
		for _, l := range [][]string{r.APIGroups, r.Resources, r.ResourceNames, r.NonResourceURLs, r.Verbs} {
			slices.Sort(l)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b rbacv1.PolicyRule) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// TestPodSecurityContext: non-root 65534, no privilege escalation, no
// capability, read-only root and host mounts, RuntimeDefault seccomp, the
// host namespaces the agent needs and no other, Linux nodes only.
func TestPodSecurityContext(t *testing.T) {
	forEachVariant(t, func(t *testing.T, r *rendered) {
		pod := r.ds.Spec.Template.Spec
		c := r.container(t)
		if !pod.HostNetwork || !pod.HostPID || pod.HostIPC {
			t.Errorf("host namespaces: network=%v pid=%v ipc=%v; want network and PID only", pod.HostNetwork, pod.HostPID, pod.HostIPC)
		}
		psc := pod.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser != 65534 || psc.RunAsGroup == nil || *psc.RunAsGroup != 65534 {
			t.Error("pod must run as 65534:65534 with runAsNonRoot")
		}
		if psc == nil || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Error("pod must use the RuntimeDefault seccomp profile")
		}
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
		case sc.RunAsUser != nil && *sc.RunAsUser == 0, sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
			t.Error("the container overrides the pod's non-root user")
		}
		if got := pod.NodeSelector["kubernetes.io/os"]; got != "linux" {
			t.Errorf("nodeSelector kubernetes.io/os=%q, want linux: the agent reads Linux /proc, /sys and cgroups", got)
		}

		// hostPath volumes: exactly the host's /proc, /sys and /, mounted
		// read-only; nothing else from the host.
		hostPaths := map[string]string{}
		for _, v := range pod.Volumes {
			if v.HostPath != nil {
				hostPaths[v.Name] = v.HostPath.Path
			}
		}
		if diff := cmp.Diff(map[string]string{"proc": "/proc", "sys": "/sys", "root": "/"}, hostPaths); diff != "" {
			t.Errorf("hostPath volumes (-want +got):\n%s", diff)
		}
		mounted := 0
		for _, m := range c.VolumeMounts {
			if !m.ReadOnly {
				t.Errorf("volume %s is mounted read-write", m.Name)
			}
			if _, ok := hostPaths[m.Name]; ok {
				mounted++
			}
		}
		if mounted != len(hostPaths) {
			t.Errorf("%d of %d host volumes mounted", mounted, len(hostPaths))
		}
		for _, p := range []struct{ flag, want string }{
			{"--path.procfs", "/host/proc"}, {"--path.sysfs", "/host/sys"}, {"--path.rootfs", "/host/root"},
			{"--path.cgroupfs", "/host/sys/fs/cgroup"}, {"--path.udev.data", "/host/root/run/udev/data"},
		} {
			if got := argValue(c, p.flag); got != p.want {
				t.Errorf("%s=%q, want %q", p.flag, got, p.want)
			}
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[res]; !ok {
				t.Errorf("no %s request", res)
			}
			if _, ok := c.Resources.Limits[res]; !ok {
				t.Errorf("no %s limit", res)
			}
		}
		var memLimit bool
		for _, e := range c.Env {
			memLimit = memLimit || e.Name == "GOMEMLIMIT" && e.Value != ""
		}
		if !memLimit {
			t.Error("no GOMEMLIMIT: the heap may grow to twice its live size")
		}
		// Probes carry no token or client certificate: they go to the plain
		// health address, whose port is the one named health.
		var healthPort int32
		for _, p := range c.Ports {
			if p.Name == "health" {
				healthPort = p.ContainerPort
			}
		}
		if want := fmt.Sprintf(":%d", healthPort); healthPort == 0 || argValue(c, "--web.health-address") != want {
			t.Errorf("--web.health-address=%q, want %q (the port named health)", argValue(c, "--web.health-address"), want)
		}
		for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "health" || p.HTTPGet.Scheme == corev1.URISchemeHTTPS {
				t.Errorf("%s probe must GET the plain health port", name)
			}
		}
	})
}

// TestSecretVolumesReadable: every Secret, ConfigMap and projected volume
// is readable by the user the container runs as.
func TestSecretVolumesReadable(t *testing.T) {
	forEachVariant(t, func(t *testing.T, r *rendered) {
		checked := 0
		for _, v := range r.ds.Spec.Template.Spec.Volumes {
			if v.HostPath != nil {
				continue
			}
			if err := volumeReadable(r.ds.Spec.Template.Spec.SecurityContext, r.container(t).SecurityContext, v); err != nil {
				t.Error(err)
			}
			checked++
		}
		if r.tlsSecret != "" {
			var found bool
			for _, v := range r.ds.Spec.Template.Spec.Volumes {
				found = found || v.Secret != nil && v.Secret.SecretName == r.tlsSecret
			}
			if !found {
				t.Errorf("no volume of Secret %s", r.tlsSecret)
			}
		}
		t.Logf("%d non-host volumes checked", checked)
	})
}

// TestVolumeReadableCatchesUnreadable: the readability check rejects what
// made every pod crash-loop before (a Secret at 0440 without fsGroup, read
// by user 65534) and accepts its fixes.
func TestVolumeReadableCatchesUnreadable(t *testing.T) {
	u := func(x int64) *int64 { return &x }
	m := func(x int32) *int32 { return &x }
	secret := func(mode *int32) corev1.Volume {
		return corev1.Volume{Name: "web", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "x", DefaultMode: mode}}}
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.PodSecurityContext
		vol  corev1.Volume
		ok   bool
	}{
		{"0440 without fsGroup", &corev1.PodSecurityContext{RunAsUser: u(65534)}, secret(m(0o440)), false},
		{"0440 with fsGroup", &corev1.PodSecurityContext{RunAsUser: u(65534), FSGroup: u(65534)}, secret(m(0o440)), true},
		{"0400 with fsGroup", &corev1.PodSecurityContext{RunAsUser: u(65534), FSGroup: u(65534)}, secret(m(0o400)), true},
		{"0444 without fsGroup", &corev1.PodSecurityContext{RunAsUser: u(65534)}, secret(m(0o444)), true},
		{"default 0644 without fsGroup", &corev1.PodSecurityContext{RunAsUser: u(65534)}, secret(nil), true},
		{"item 0400 without fsGroup", &corev1.PodSecurityContext{RunAsUser: u(65534)}, corev1.Volume{Name: "i", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: "x", Items: []corev1.KeyToPath{{Key: "k", Path: "k", Mode: m(0o400)}}}}}, false},
		{"0400 as root", &corev1.PodSecurityContext{RunAsUser: u(0)}, secret(m(0o400)), true},
	} {
		err := volumeReadable(tc.pod, nil, tc.vol)
		if (err == nil) != tc.ok {
			t.Errorf("%s: readable=%v, want %v (%v)", tc.name, err == nil, tc.ok, err)
		}
	}
}

// volumeReadable says why v's files are unreadable to the container's
// user, or nil. The kubelet writes Secret, ConfigMap and projected volumes
// owned by root; with an fsGroup it gives them that group and adds group
// read (the user is in the fsGroup), else group and others get the mode's
// bits. Mode defaults to 0644.
func volumeReadable(pod *corev1.PodSecurityContext, ctr *corev1.SecurityContext, v corev1.Volume) error {
	var uid int64 = -1
	var fsGroup *int64
	if pod != nil {
		if pod.RunAsUser != nil {
			uid = *pod.RunAsUser
		}
		fsGroup = pod.FSGroup
	}
	if ctr != nil && ctr.RunAsUser != nil {
		uid = *ctr.RunAsUser
	}
	if uid == 0 {
		return nil
	}
	var modes []int32
	add := func(def *int32, items []corev1.KeyToPath) {
		d := int32(0o644)
		if def != nil {
			d = *def
		}
		modes = append(modes, d)
		for _, it := range items {
			if it.Mode != nil {
				modes = append(modes, *it.Mode)
			}
		}
	}
	switch {
	case v.Secret != nil:
		add(v.Secret.DefaultMode, v.Secret.Items)
	case v.ConfigMap != nil:
		add(v.ConfigMap.DefaultMode, v.ConfigMap.Items)
	case v.Projected != nil:
		add(v.Projected.DefaultMode, nil)
		for _, s := range v.Projected.Sources {
			if s.Secret != nil {
				add(v.Projected.DefaultMode, s.Secret.Items)
			}
			if s.ConfigMap != nil {
				add(v.Projected.DefaultMode, s.ConfigMap.Items)
			}
		}
	case v.EmptyDir != nil:
		return nil
	default:
		return fmt.Errorf("volume %s: a volume type the check does not know", v.Name)
	}
	for _, mode := range modes {
		if mode&0o004 != 0 || fsGroup != nil {
			continue
		}
		return fmt.Errorf("volume %s: mode %#o without fsGroup is unreadable to user %d (files are owned by root)", v.Name, mode, uid)
	}
	return nil
}
