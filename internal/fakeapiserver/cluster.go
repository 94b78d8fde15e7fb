package fakeapiserver

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cluster's side of the fake: the version, APIServices (and the
// Metrics API they make available), Deployments and Services to list,
// self reviews, and resource rules for access reviews. Objects are kept in
// the few fields clients read and written in the API server's JSON shape;
// k8s.io/kube-aggregator and the metrics API types would be dependencies
// for a handful of fields.

// Routes of the cluster's side, as Calls and Forbid name them.
const (
	Version                  = "GET /version"
	APIServices              = "GET /apis/apiregistration.k8s.io/v1/apiservices/{name}"
	NodeMetrics              = "GET /apis/metrics.k8s.io/v1beta1/nodes/{name}"
	Deployments              = "GET /apis/apps/v1/deployments"
	Services                 = "GET /api/v1/services"
	SelfSubjectAccessReviews = "POST /apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
	SelfSubjectReviews       = "POST /apis/authentication.k8s.io/v1/selfsubjectreviews"
)

// metricsAPIService is the APIService that makes /apis/metrics.k8s.io
// available.
const metricsAPIService = "v1beta1.metrics.k8s.io"

// GitVersion is what GET /version reports.
const GitVersion = "v1.37.2-fake"

// APIService is an apiregistration.k8s.io/v1 APIService.
type APIService struct {
	Name string
	// ServiceNamespace and ServiceName are the Service behind it; empty
	// for a group the API server serves itself.
	ServiceNamespace, ServiceName string
	// Available is its Available condition, with Reason and Message.
	Available       bool
	Reason, Message string
}

// Workload is a Deployment (with replicas) or a Service in a list.
type Workload struct {
	Namespace, Name string
	Labels          map[string]string
	Replicas, Ready int
}

// ResourceRule is an RBAC rule on a resource: a verb, the API group ("" for
// the core group) and the resource, "nodes/pods" for a subresource; "*"
// matches any of them.
type ResourceRule struct {
	Verb, Group, Resource string
}

// SetAPIService registers a (replaces the one of its name).
func (s *Server) SetAPIService(a APIService) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiServices[a.Name] = a
}

// DeleteAPIService removes the APIService name.
func (s *Server) DeleteAPIService(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apiServices, name)
}

// SetNodeMetrics makes the Metrics API report node's usage (served while
// the APIService v1beta1.metrics.k8s.io is registered and Available).
func (s *Server) SetNodeMetrics(node, cpu, memory string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nodeUsage[node] = [2]string{cpu, memory}
}

// AddDeployment and AddService add an object to the cluster-wide lists.
func (s *Server) AddDeployment(w Workload) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deploymentList = append(s.deploymentList, w)
}

// AddService adds a Service.
func (s *Server) AddService(w Workload) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serviceList = append(s.serviceList, w)
}

// AllowResource grants subject (a user name or a group) the rules, for
// SubjectAccessReviews and SelfSubjectAccessReviews with resource
// attributes.
func (s *Server) AllowResource(subject string, rules ...ResourceRule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resourceRules[subject] = append(s.resourceRules[subject], rules...)
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request) {
	writeObject(w, http.StatusOK, map[string]string{"major": "1", "minor": "37", "gitVersion": GitVersion, "platform": "linux/amd64"})
}

func (s *Server) apiService(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	s.mu.Lock()
	a, ok := s.apiServices[name]
	s.mu.Unlock()
	if !ok {
		writeNotFound(w, "apiregistration.k8s.io", "apiservices", name)
		return
	}
	group, version, _ := strings.Cut(name, ".")
	group, version = version, group // v1beta1.metrics.k8s.io: version first
	status := metav1.ConditionFalse
	if a.Available {
		status = metav1.ConditionTrue
	}
	obj := map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": name},
		"spec":       map[string]any{"group": group, "version": version},
		"status": map[string]any{"conditions": []map[string]any{{
			"type": "Available", "status": status, "reason": a.Reason, "message": a.Message,
		}}},
	}
	if a.ServiceName != "" {
		obj["spec"].(map[string]any)["service"] = map[string]any{"namespace": a.ServiceNamespace, "name": a.ServiceName, "port": 443}
	}
	writeObject(w, http.StatusOK, obj)
}

// nodeMetrics answers as the aggregator does: 404 for a group nobody
// registered, 503 while its APIService is not Available, else
// metrics-server's answer.
func (s *Server) nodeMetrics(w http.ResponseWriter, r *http.Request) {
	node := r.PathValue("name")
	s.mu.Lock()
	a, registered := s.apiServices[metricsAPIService]
	usage, known := s.nodeUsage[node]
	s.mu.Unlock()
	switch {
	case !registered:
		writeStatus(w, http.StatusNotFound, metav1.StatusReasonNotFound, "the server could not find the requested resource")
	case !a.Available:
		writeStatus(w, http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable, "the server is currently unable to handle the request")
	case !known:
		writeNotFound(w, "metrics.k8s.io", "nodes", node)
	default:
		writeObject(w, http.StatusOK, map[string]any{
			"apiVersion": "metrics.k8s.io/v1beta1",
			"kind":       "NodeMetrics",
			"metadata":   map[string]any{"name": node},
			"timestamp":  "2026-01-01T00:00:00Z",
			"window":     "20.05s",
			"usage":      map[string]string{"cpu": usage[0], "memory": usage[1]},
		})
	}
}

func (s *Server) deployments(w http.ResponseWriter, r *http.Request) {
	s.list(w, r, "apps/v1", "DeploymentList", func() []Workload { return s.deploymentList }, true)
}

func (s *Server) services(w http.ResponseWriter, r *http.Request) {
	s.list(w, r, "v1", "ServiceList", func() []Workload { return s.serviceList }, false)
}

// list serves a cluster-wide list filtered by an equality labelSelector
// (k=v[,k=v…], what clients of this fake send).
func (s *Server) list(w http.ResponseWriter, r *http.Request, apiVersion, kind string, all func() []Workload, replicas bool) {
	want := map[string]string{}
	if sel := r.URL.Query().Get("labelSelector"); sel != "" {
		for _, term := range strings.Split(sel, ",") {
			k, v, ok := strings.Cut(term, "=")
			if !ok {
				writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "the fake API server understands k=v label selectors only: "+sel)
				return
			}
			want[k] = v
		}
	}
	s.mu.Lock()
	objs := slices.Clone(all())
	s.mu.Unlock()
	items := []map[string]any{}
	for _, o := range objs {
		match := true
		for k, v := range want {
			match = match && o.Labels[k] == v
		}
		if !match {
			continue
		}
		item := map[string]any{"metadata": map[string]any{"namespace": o.Namespace, "name": o.Name, "labels": o.Labels}}
		if replicas {
			item["status"] = map[string]any{"replicas": o.Replicas, "readyReplicas": o.Ready}
		}
		items = append(items, item)
	}
	writeObject(w, http.StatusOK, map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{}, "items": items})
}

// caller is who the request's bearer token is: the kubeconfig's client,
// or a token TokenReview knows.
func (s *Server) caller(r *http.Request) User {
	token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.tokens[token]; ok && token != s.ClientToken {
		return u
	}
	return User{Name: s.ClientUser, Groups: []string{"system:authenticated"}}
}

func (s *Server) selfSubjectReview(w http.ResponseWriter, r *http.Request) {
	var ssr authnv1.SelfSubjectReview
	if !decode(w, r, &ssr) {
		return
	}
	u := s.caller(r)
	ssr.Status.UserInfo = authnv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups, Extra: extra(u.Extra)}
	writeObject(w, http.StatusCreated, &ssr)
}

func (s *Server) selfSubjectAccessReview(w http.ResponseWriter, r *http.Request) {
	var ssar authzv1.SelfSubjectAccessReview
	if !decode(w, r, &ssar) {
		return
	}
	u := s.caller(r)
	ssar.Status = s.decide(append([]string{u.Name}, u.Groups...), ssar.Spec.ResourceAttributes, ssar.Spec.NonResourceAttributes)
	writeObject(w, http.StatusCreated, &ssar)
}

// decide is RBAC over the fake's tables for subjects (a user and its
// groups): allowed or, without a matching rule, no opinion.
func (s *Server) decide(subjects []string, ra *authzv1.ResourceAttributes, na *authzv1.NonResourceAttributes) authzv1.SubjectAccessReviewStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case na != nil:
		for _, sub := range subjects {
			if na.Verb == "get" && slices.ContainsFunc(s.allowed[sub], func(rule string) bool { return matchURL(rule, na.Path) }) {
				return authzv1.SubjectAccessReviewStatus{Allowed: true, Reason: "allowed by the fake API server's table"}
			}
		}
	case ra != nil:
		resource := ra.Resource
		if ra.Subresource != "" {
			resource += "/" + ra.Subresource
		}
		for _, sub := range subjects {
			for _, rule := range s.resourceRules[sub] {
				if matches(rule.Verb, ra.Verb) && matches(rule.Group, ra.Group) && matches(rule.Resource, resource) {
					return authzv1.SubjectAccessReviewStatus{Allowed: true, Reason: "allowed by the fake API server's table"}
				}
			}
		}
	}
	return authzv1.SubjectAccessReviewStatus{}
}

func matches(rule, value string) bool { return rule == "*" || rule == value }

// writeNotFound is the API server's 404 for a named object.
func writeNotFound(w http.ResponseWriter, group, resource, name string) {
	full := resource
	if group != "" {
		full += "." + group
	}
	b := metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Reason: metav1.StatusReasonNotFound, Code: http.StatusNotFound,
		Message: fmt.Sprintf("%s %q not found", full, name),
		Details: &metav1.StatusDetails{Name: name, Group: group, Kind: resource},
	}
	writeObject(w, http.StatusNotFound, &b)
}
