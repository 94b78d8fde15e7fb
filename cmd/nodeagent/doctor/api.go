package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"

	"github.com/nodeagent/nodeagent/internal/kubeapi"
)

// Cluster checks, through the API server: access itself, metrics-server
// (its APIService and this node's metrics), kube-state-metrics, the custom
// and external metrics adapters, and SelfSubjectAccessReviews for the
// kubelet checks.
//
// Like the agent (internal/kubeapi, docs/security.md), doctor uses
// client-go's REST client with only the review types it posts; the objects
// it reads (APIServices, Deployments, Services, NodeMetrics) are decoded
// into the few fields it looks at.

// The APIServices doctor reads, and the label kube-state-metrics carries.
const (
	metricsAPIService  = "v1beta1.metrics.k8s.io"
	customAPIService   = "v1beta1.custom.metrics.k8s.io"
	externalAPIService = "v1beta1.external.metrics.k8s.io"
	ksmSelector        = "app.kubernetes.io/name=kube-state-metrics"
)

// doctorRoleFix names the ClusterRole docs/troubleshooting.md defines.
const doctorRoleFix = "bind the nodeagent-doctor ClusterRole (docs/troubleshooting.md) to the identity doctor uses"

// apiConn is a connection to the API server with one identity.
type apiConn struct {
	host         string
	authz, authn *rest.RESTClient
}

func newAPIConn(cfg *rest.Config) (*apiConn, error) {
	authz, err := kubeapi.RESTClient(cfg, authzv1.SchemeGroupVersion, authzv1.AddToScheme)
	if err != nil {
		return nil, err
	}
	authn, err := kubeapi.RESTClient(cfg, authnv1.SchemeGroupVersion, authnv1.AddToScheme)
	if err != nil {
		return nil, err
	}
	return &apiConn{host: cfg.Host, authz: authz, authn: authn}, nil
}

// connect uses --kubeconfig, or the pod's service account.
func (d *doctor) connect(context.Context) (*apiConn, error) {
	cfg, err := d.opts.KubeAPI.Config()
	if err != nil {
		return nil, err
	}
	cfg.Timeout = d.checkTimeout
	return newAPIConn(cfg)
}

// connectAsKubeletCredential reaches the same API server with the token
// the agent sends the kubelet, so that a SelfSubjectAccessReview speaks
// for the identity the kubelet authorizes (in a pod both are the
// service-account token; on a host they may differ).
func (d *doctor) connectAsKubeletCredential(context.Context) (*apiConn, error) {
	creds := d.kubeletCreds()
	if creds.token == "" {
		return nil, fmt.Errorf("the kubelet credential is %s; only the kubelet's answer tells", creds.desc)
	}
	cfg, err := d.opts.KubeAPI.Config()
	if err != nil {
		return nil, err
	}
	c := rest.AnonymousClientConfig(cfg)
	c.BearerTokenFile = creds.token
	c.Timeout = d.checkTimeout
	return newAPIConn(c)
}

// getRaw GETs an API path; the error is the API server's status.
func (c *apiConn) getRaw(ctx context.Context, path string, query url.Values, into any) error {
	req := c.authz.Get().AbsPath(path)
	for k, vs := range query {
		for _, v := range vs {
			req = req.Param(k, v)
		}
	}
	// Result.Error, unlike DoRaw, decodes the API server's Status (the
	// details of a 404 tell a missing object from a missing API).
	res := req.Do(ctx)
	if err := res.Error(); err != nil {
		return fmt.Errorf("GET %s%s: %w", c.host, path, err)
	}
	body, _ := res.Raw()
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s%s: decoding: %w", c.host, path, err)
	}
	return nil
}

func (c *apiConn) version(ctx context.Context) (string, error) {
	var v struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := c.getRaw(ctx, "/version", nil, &v); err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

// whoami asks a SelfSubjectReview (authentication.k8s.io/v1, 1.28+) who
// the connection's credentials are; every authenticated user may.
func (c *apiConn) whoami(ctx context.Context) (string, error) {
	var out authnv1.SelfSubjectReview
	if err := c.authn.Post().Resource("selfsubjectreviews").Body(&authnv1.SelfSubjectReview{}).Do(ctx).Into(&out); err != nil {
		return "", fmt.Errorf("SelfSubjectReview at %s: %w", c.host, err)
	}
	return out.Status.UserInfo.Username, nil
}

// ssarAnswer is what RBAC says about get on a nodes subresource.
type ssarAnswer struct {
	asked, allowed bool
	reason         string // why it was not asked
	user           string
}

func (d *doctor) askSSAR(sub string) func(context.Context) (ssarAnswer, error) {
	return func(ctx context.Context) (ssarAnswer, error) {
		conn, err := d.kubeletID.get(ctx)
		if err != nil {
			return ssarAnswer{reason: err.Error()}, nil
		}
		user, _ := d.kubeletUser.get(ctx)
		var out authzv1.SelfSubjectAccessReview
		err = conn.authz.Post().Resource("selfsubjectaccessreviews").Body(&authzv1.SelfSubjectAccessReview{
			Spec: authzv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authzv1.ResourceAttributes{
				Verb: "get", Resource: "nodes", Subresource: sub, Name: d.opts.NodeName,
			}},
		}).Do(ctx).Into(&out)
		if err != nil {
			return ssarAnswer{reason: fmt.Sprintf("SelfSubjectAccessReview at %s: %v", conn.host, err), user: user}, nil
		}
		return ssarAnswer{asked: true, allowed: out.Status.Allowed && !out.Status.Denied, user: user}, nil
	}
}

// apiAccess is the cluster checks' gate: the connection, or the outcome
// every cluster check reports without one.
func (d *doctor) apiAccess(ctx context.Context) (*apiConn, *outcome) {
	conn, err := d.api.get(ctx)
	if err != nil {
		o := skipf("no API access: see api.access")
		return nil, &o
	}
	if _, err := d.apiVersion.get(ctx); err != nil {
		o := skipf("no API access: see api.access")
		return nil, &o
	}
	return conn, nil
}

func checkAPIAccess(ctx context.Context, d *doctor) outcome {
	conn, err := d.api.get(ctx)
	switch {
	case errors.Is(err, kubeapi.ErrNotInCluster):
		return skipf("no API access: %v", err)
	case err != nil:
		return fail(err.Error(), "correct --kubeconfig")
	}
	v, err := d.apiVersion.get(ctx)
	switch {
	case apierrors.IsUnauthorized(err):
		return fail(fmt.Sprintf("the API server at %s does not accept doctor's credentials: %v", conn.host, err),
			"give --kubeconfig valid credentials; in a pod the service-account token must be mounted and not expired")
	case err != nil:
		return fail(fmt.Sprintf("the API server at %s does not answer: %v", conn.host, d.explainTimeout(err)), "check --kubeconfig's server address, or KUBERNETES_SERVICE_HOST in a pod, and that the API server runs")
	}
	who, err := d.apiIdentity.get(ctx)
	if err != nil || who == "" {
		who = "an identity the API server did not name"
	}
	return okf("the API server at %s (%s) answers; doctor is %s", conn.host, v, who)
}

// apiService is an APIService as far as doctor reads it.
type apiService struct {
	found  bool
	denied error // reading it is forbidden
	Spec   struct {
		Service *struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"service"`
	} `json:"spec"`
	Status struct {
		Conditions []struct {
			Type    string `json:"type"`
			Status  string `json:"status"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"conditions"`
	} `json:"status"`
}

func (d *doctor) readAPIService(name string) func(context.Context) (*apiService, error) {
	return func(ctx context.Context) (*apiService, error) {
		conn, err := d.api.get(ctx)
		if err != nil {
			return nil, err
		}
		var s apiService
		err = conn.getRaw(ctx, "/apis/apiregistration.k8s.io/v1/apiservices/"+name, nil, &s)
		switch {
		case apierrors.IsNotFound(err):
			return &apiService{}, nil
		case apierrors.IsForbidden(err):
			return &apiService{denied: err}, nil
		case err != nil:
			return nil, err
		}
		s.found = true
		return &s, nil
	}
}

// available returns the Available condition: "True", or the status with
// reason and message.
func (s *apiService) available() (bool, string) {
	for _, c := range s.Status.Conditions {
		if c.Type == "Available" {
			return c.Status == "True", fmt.Sprintf("%s: %s", c.Reason, c.Message)
		}
	}
	return false, "no Available condition yet"
}

func (s *apiService) backend() string {
	if s.Spec.Service == nil {
		return "served by the API server itself"
	}
	return fmt.Sprintf("Service %s/%s", s.Spec.Service.Namespace, s.Spec.Service.Name)
}

// unavailableFix says what to do for an Available=False APIService, by
// the aggregator's reason.
func unavailableFix(s *apiService, name, what string) string {
	_, why := s.available()
	switch {
	case strings.HasPrefix(why, "ServiceNotFound"):
		return fmt.Sprintf("the %s the APIService %s points to does not exist: reinstall %s", s.backend(), name, what)
	case strings.HasPrefix(why, "MissingEndpoints"), strings.HasPrefix(why, "EndpointsNotFound"):
		return fmt.Sprintf("%s has no ready pod behind its %s: kubectl describe its pods; its log says why", what, s.backend())
	case strings.HasPrefix(why, "FailedDiscoveryCheck"):
		return fmt.Sprintf("the API server cannot reach %s's %s: a NetworkPolicy or firewall between the control plane and the pod network, or a TLS problem named in the message", what, s.backend())
	}
	return fmt.Sprintf("kubectl get apiservice %s -o yaml shows the condition; fix %s", name, what)
}

func checkMetricsServerAPIService(ctx context.Context, d *doctor) outcome {
	if _, skip := d.apiAccess(ctx); skip != nil {
		return *skip
	}
	s, err := d.apiServices[metricsAPIService].get(ctx)
	switch {
	case err != nil:
		return fail(fmt.Sprintf("cannot read the APIService %s: %v", metricsAPIService, err), "")
	case s.denied != nil:
		return warn(fmt.Sprintf("may not read the APIService %s: %v", metricsAPIService, s.denied), doctorRoleFix)
	case !s.found:
		return fail(fmt.Sprintf("the APIService %s is missing: metrics-server is not installed, so the Metrics API behind kubectl top and CPU/memory HPAs (\"Metrics API not available\") is not served", metricsAPIService),
			"install metrics-server (its release manifest components.yaml, or the metrics-server Helm chart); it registers the APIService "+metricsAPIService)
	}
	if ok, why := s.available(); !ok {
		return fail(fmt.Sprintf("the APIService %s (%s) is not Available: %s", metricsAPIService, s.backend(), why), unavailableFix(s, metricsAPIService, "metrics-server"))
	}
	return okf("the APIService %s is Available (%s)", metricsAPIService, s.backend())
}

// nodeMetrics is a metrics.k8s.io NodeMetrics as far as doctor reads it.
type nodeMetrics struct {
	Window string `json:"window"`
	Usage  struct {
		CPU    string `json:"cpu"`
		Memory string `json:"memory"`
	} `json:"usage"`
}

func checkMetricsServerNode(ctx context.Context, d *doctor) outcome {
	conn, skip := d.apiAccess(ctx)
	if skip != nil {
		return *skip
	}
	if s, err := d.apiServices[metricsAPIService].get(ctx); err == nil && s.denied == nil {
		if !s.found {
			return skipf("the Metrics API is not served: see metrics-server.apiservice")
		}
		if ok, _ := s.available(); !ok {
			return skipf("the Metrics API is not available: see metrics-server.apiservice")
		}
	}
	node := d.opts.NodeName
	var m nodeMetrics
	err := conn.getRaw(ctx, "/apis/metrics.k8s.io/v1beta1/nodes/"+node, nil, &m)
	var st apierrors.APIStatus
	switch {
	case apierrors.IsNotFound(err) && errors.As(err, &st) && st.Status().Details != nil && st.Status().Details.Name == node:
		return fail(fmt.Sprintf("metrics-server has no metrics for node %s: it could not scrape this node's kubelet (/metrics/resource on port 10250)", node),
			"read metrics-server's log for this node: usually the kubelet's serving certificate (serverTLSBootstrap, or metrics-server's --kubelet-insecure-tls) or --kubelet-preferred-address-types")
	case apierrors.IsNotFound(err):
		return fail(fmt.Sprintf("the Metrics API is not served at %s: %v", conn.host, err), "install metrics-server (see metrics-server.apiservice)")
	case apierrors.IsForbidden(err):
		return warn(fmt.Sprintf("may not get this node's metrics: %v", err), doctorRoleFix)
	case apierrors.IsServiceUnavailable(err):
		return fail(fmt.Sprintf("the Metrics API answers 503: the API server cannot reach metrics-server: %v", err), "see metrics-server.apiservice, and metrics-server's pods and log")
	case err != nil:
		return fail(fmt.Sprintf("the Metrics API did not answer for node %s: %v", node, err), "read metrics-server's log")
	}
	return okf("metrics-server reports node %s: cpu %s, memory %s (window %s)", node, m.Usage.CPU, m.Usage.Memory, m.Window)
}

// workloadList is a Deployment or Service list as far as doctor reads it.
type workloadList struct {
	Items []struct {
		Metadata struct {
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"metadata"`
		Status struct {
			Replicas      int `json:"replicas"`
			ReadyReplicas int `json:"readyReplicas"`
		} `json:"status"`
	} `json:"items"`
}

func checkKubeStateMetrics(ctx context.Context, d *doctor) outcome {
	conn, skip := d.apiAccess(ctx)
	if skip != nil {
		return *skip
	}
	q := url.Values{"labelSelector": {ksmSelector}}
	var deps, svcs workloadList
	derr := conn.getRaw(ctx, "/apis/apps/v1/deployments", q, &deps)
	serr := conn.getRaw(ctx, "/api/v1/services", q, &svcs)
	for _, err := range []error{derr, serr} {
		if err != nil && !apierrors.IsForbidden(err) {
			return fail(fmt.Sprintf("cannot list kube-state-metrics' Deployments or Services: %v", err), "")
		}
	}
	var svcNames []string
	for _, s := range svcs.Items {
		svcNames = append(svcNames, s.Metadata.Namespace+"/"+s.Metadata.Name)
	}
	if len(deps.Items) > 0 {
		var ready []string
		for _, dep := range deps.Items {
			if dep.Status.ReadyReplicas > 0 {
				ready = append(ready, fmt.Sprintf("Deployment %s/%s, %d of %d replicas ready", dep.Metadata.Namespace, dep.Metadata.Name, dep.Status.ReadyReplicas, dep.Status.Replicas))
			}
		}
		if len(ready) == 0 {
			dep := deps.Items[0]
			return fail(fmt.Sprintf("the Deployment %s/%s of kube-state-metrics has no ready replica (0 of %d): kube_* series (the state of pods, deployments, nodes) are missing", dep.Metadata.Namespace, dep.Metadata.Name, dep.Status.Replicas),
				"kubectl -n "+dep.Metadata.Namespace+" describe deployment "+dep.Metadata.Name+"; its pods' events and log say why")
		}
		return okf("kube-state-metrics runs: %s%s", strings.Join(ready, "; "), servicesNote(svcNames))
	}
	if len(svcNames) > 0 {
		return okf("kube-state-metrics has the Service %s (no Deployment labelled %s is visible)", strings.Join(svcNames, ", "), ksmSelector)
	}
	switch {
	case derr != nil && serr != nil:
		return warn(fmt.Sprintf("may not list Deployments and Services to find kube-state-metrics: %v", derr), doctorRoleFix)
	case derr != nil:
		// What the nodeagent-doctor ClusterRole as shipped gives (the
		// chart and the kustomize base leave out listing Deployments):
		// binding it again would change nothing, so the fix says what
		// would.
		return warn(fmt.Sprintf("no Service labelled %s in any namespace; Deployments were not looked at (doctor may not list them: %v)", ksmSelector, derr),
			"install kube-state-metrics (kube-prometheus, or the prometheus-community kube-state-metrics chart), or label its Service "+ksmSelector+
				"; to find it by its Deployment too, let doctor list Deployments (the chart's doctor.rbac.listDeployments, the rule in docs/troubleshooting.md)")
	case serr != nil:
		return warn(fmt.Sprintf("no Deployment labelled %s, and may not list Services: %v", ksmSelector, serr),
			doctorRoleFix+"; or install kube-state-metrics if it is not there")
	}
	return warn(fmt.Sprintf("no Deployment or Service labelled %s in any namespace: kube_* series (the state of pods, deployments, nodes), which kubernetes-mixin dashboards and alerts need, are missing", ksmSelector),
		"install kube-state-metrics (kube-prometheus, or the prometheus-community kube-state-metrics chart), or label yours "+ksmSelector)
}

func servicesNote(svcs []string) string {
	if len(svcs) == 0 {
		return ""
	}
	return ", Service " + strings.Join(svcs, ", ")
}

// checkAdapter: a custom or external metrics adapter is optional (only
// HPAs on such metrics need one), but an APIService that is registered and
// not Available breaks API discovery for every client.
func checkAdapter(name, what string) func(context.Context, *doctor) outcome {
	return func(ctx context.Context, d *doctor) outcome {
		if _, skip := d.apiAccess(ctx); skip != nil {
			return *skip
		}
		s, err := d.apiServices[name].get(ctx)
		switch {
		case err != nil:
			return fail(fmt.Sprintf("cannot read the APIService %s: %v", name, err), "")
		case s.denied != nil:
			return warn(fmt.Sprintf("may not read the APIService %s: %v", name, s.denied), doctorRoleFix)
		case !s.found:
			return okf("no %s adapter (APIService %s): only HorizontalPodAutoscalers on %s metrics need one", what, name, what)
		}
		if ok, why := s.available(); !ok {
			return fail(fmt.Sprintf("the APIService %s (%s) is not Available: %s; HPAs on %s metrics fail, and API discovery reports errors to every client (\"unable to retrieve the complete list of server APIs\")", name, s.backend(), why, what),
				unavailableFix(s, name, "the "+what+" metrics adapter")+", or delete the APIService if the adapter is gone")
		}
		return okf("the %s metrics adapter's APIService %s is Available (%s)", what, name, s.backend())
	}
}
