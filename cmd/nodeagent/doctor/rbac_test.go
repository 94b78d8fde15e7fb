package doctor

import (
	"maps"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"

	"github.com/nodeagent/nodeagent/internal/fakeapiserver"
	"github.com/nodeagent/nodeagent/internal/manifests"
)

// documentedRole reads the nodeagent-doctor ClusterRole from
// docs/troubleshooting.md, where operators copy it from.
func documentedRole(t *testing.T) rbacv1.ClusterRole {
	t.Helper()
	role, err := manifests.DocumentedClusterRole("../../../docs/troubleshooting.md", "nodeagent-doctor")
	if err != nil {
		t.Fatal(err)
	}
	return *role
}

// allows is RBAC's rule matching, for what the test needs.
func allows(role rbacv1.ClusterRole, verb, group, resource, name, url string) bool {
	has := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	for _, r := range role.Rules {
		if url != "" {
			if has(r.Verbs, verb) && slices.ContainsFunc(r.NonResourceURLs, func(u string) bool {
				return u == url || u == "*" || (strings.HasSuffix(u, "*") && strings.HasPrefix(url, strings.TrimSuffix(u, "*")))
			}) {
				return true
			}
			continue
		}
		if has(r.Verbs, verb) && has(r.APIGroups, group) && has(r.Resources, resource) && (len(r.ResourceNames) == 0 || slices.Contains(r.ResourceNames, name)) {
			return true
		}
	}
	return false
}

// TestDocumentedClusterRole: every API request a healthy run makes is
// allowed by the documented ClusterRole, or needs no rule (the
// version and the self reviews), and the role grants nothing else that
// doctor does not use.
func TestDocumentedClusterRole(t *testing.T) {
	t.Parallel()
	role := documentedRole(t)
	c := newCluster(t)
	c.run()
	// What each route doctor may call needs, as the API server authorizes it.
	need := map[string]struct{ verb, group, resource string }{
		fakeapiserver.APIServices: {"get", "apiregistration.k8s.io", "apiservices"},
		fakeapiserver.NodeMetrics: {"get", "metrics.k8s.io", "nodes"},
		fakeapiserver.Deployments: {"list", "apps", "deployments"},
		fakeapiserver.Services:    {"list", "", "services"},
	}
	defaults := []string{fakeapiserver.Version, fakeapiserver.SelfSubjectAccessReviews, fakeapiserver.SelfSubjectReviews}
	checked := 0
	for _, route := range append(slices.Sorted(maps.Keys(need)), defaults...) {
		if c.api.Calls(route) == 0 {
			t.Errorf("doctor never called %s: the test's table is stale", route)
			continue
		}
		if slices.Contains(defaults, route) {
			continue
		}
		n := need[route]
		names := []string{""}
		switch route {
		case fakeapiserver.APIServices:
			names = []string{metricsAPIService, customAPIService, externalAPIService}
		case fakeapiserver.NodeMetrics:
			names = []string{testNode}
		}
		for _, name := range names {
			checked++
			if !allows(role, n.verb, n.group, n.resource, name, "") {
				t.Errorf("the documented ClusterRole does not allow %s %s.%s %q (%s)", n.verb, n.resource, n.group, name, route)
			}
		}
	}
	checked++
	if !allows(role, "get", "", "", "", selfPath) {
		t.Errorf("the documented ClusterRole does not allow get on %s", selfPath)
	}
	if allows(role, "get", "apiregistration.k8s.io", "apiservices", "v1beta1.other.example.com", "") || allows(role, "get", "", "secrets", "x", "") {
		t.Error("the documented ClusterRole grants more than doctor reads")
	}
	t.Logf("%d requests checked against %d rules", checked, len(role.Rules))
}
