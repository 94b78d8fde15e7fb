// Package fakeapiserver is a Kubernetes API server for tests: TLS on
// 127.0.0.1 with its own CA, a kubeconfig file pointing at itself, and
// answers in the API server's wire format (k8s.io/api types as JSON,
// metav1.Status on errors) from tables the test fills: tokens → users for
// TokenReview, subjects → non-resource URLs and resource rules for
// SubjectAccessReview and SelfSubjectAccessReview, and the cluster's side
// in cluster.go (version, APIServices and the Metrics API behind
// v1beta1.metrics.k8s.io, Deployments and Services, SelfSubjectReview).
//
// Its handler is a table of routes ("METHOD /path" → Route, see routes):
// a new API (discovery, APIServices, SelfSubjectAccessReviews, Deployments,
// …) is one more entry and one method, and every route gets the same
// caller authentication, call counting and fault injection (Stop/Restart,
// Fail, SetDelay, Forbid).
//
// Only tests import it.
package fakeapiserver

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// Routes of the built-in table, as Calls and Forbid name them.
const (
	TokenReviews          = "POST /apis/authentication.k8s.io/v1/tokenreviews"
	SubjectAccessReviews  = "POST /apis/authorization.k8s.io/v1/subjectaccessreviews"
	defaultClientUser     = "system:serviceaccount:nodeagent:nodeagent"
	maxRequestBody        = 1 << 20
	kubeconfigContextName = "fake"
)

// Route answers one API request. The caller is already authenticated and
// counted; faults are already applied.
type Route func(s *Server, w http.ResponseWriter, r *http.Request)

// routes is the built-in table. To serve another API, add its method and
// path here with a method on Server, plus whatever table its answers come
// from (guarded by s.mu).
var routes = map[string]Route{
	TokenReviews:             (*Server).tokenReview,
	SubjectAccessReviews:     (*Server).subjectAccessReview,
	Version:                  (*Server).version,
	APIServices:              (*Server).apiService,
	NodeMetrics:              (*Server).nodeMetrics,
	Deployments:              (*Server).deployments,
	Services:                 (*Server).services,
	SelfSubjectAccessReviews: (*Server).selfSubjectAccessReview,
	SelfSubjectReviews:       (*Server).selfSubjectReview,
}

// User is who a token authenticates as, as a TokenReview reports it.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// Server is a fake API server on 127.0.0.1.
type Server struct {
	// URL is its base URL; CAFile verifies its serving certificate.
	URL, CAFile string
	// Kubeconfig is a kubeconfig file with URL, the CA and ClientToken: the
	// file a program under test gets as --kubeconfig.
	Kubeconfig string
	// ClientToken is the bearer token Kubeconfig carries, accepted as
	// ClientUser; a token added with AddToken is accepted as its user; any
	// other caller gets 401.
	ClientToken, ClientUser string

	t      testing.TB
	addr   string
	tlsCfg *tls.Config
	mux    *http.ServeMux

	mu        sync.Mutex
	server    *http.Server
	routes    map[string]Route
	tokens    map[string]User
	allowed   map[string][]string // subject (user or group) → non-resource URL rules
	calls     map[string]int
	forbidden map[string]bool
	failCode  int
	delay     time.Duration

	// The cluster's side (cluster.go).
	resourceRules  map[string][]ResourceRule // subject → rules
	apiServices    map[string]APIService
	nodeUsage      map[string][2]string // node → cpu, memory
	deploymentList []Workload
	serviceList    []Workload
}

// New starts a fake API server that knows no token and allows nothing, and
// writes its kubeconfig. It stops when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	ca := fakekubelet.NewCA(t, "fake-apiserver-ca")
	certPEM, keyPEM := ca.Issue(t, "kube-apiserver", x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{
		CAFile:      fakekubelet.WriteFile(t, dir, "ca.crt", ca.PEM),
		ClientToken: "nodeagent-client-token",
		ClientUser:  defaultClientUser,
		t:           t,
		tlsCfg:      &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		mux:         http.NewServeMux(),
		routes:      map[string]Route{},
		tokens:      map[string]User{},
		allowed:     map[string][]string{},
		calls:       map[string]int{},
		forbidden:   map[string]bool{},

		resourceRules: map[string][]ResourceRule{},
		apiServices:   map[string]APIService{},
		nodeUsage:     map[string][2]string{},
	}
	for pattern, route := range routes {
		s.Handle(pattern, route)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.URL = "https://" + s.addr
	s.Kubeconfig = s.writeKubeconfig(dir, ca.PEM)
	s.serve(l)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) writeKubeconfig(dir string, caPEM []byte) string {
	s.t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[kubeconfigContextName] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[kubeconfigContextName] = &clientcmdapi.AuthInfo{Token: s.ClientToken}
	cfg.Contexts[kubeconfigContextName] = &clientcmdapi.Context{Cluster: kubeconfigContextName, AuthInfo: kubeconfigContextName}
	cfg.CurrentContext = kubeconfigContextName
	path := dir + "/kubeconfig"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		s.t.Fatal(err)
	}
	return path
}

func (s *Server) serve(l net.Listener) {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: s.tlsCfg, ErrorLog: log.New(io.Discard, "", 0)}
	s.mu.Lock()
	s.server = srv
	s.mu.Unlock()
	go func() { _ = srv.ServeTLS(l, "", "") }()
}

// Stop closes the server's port: connections are then refused.
func (s *Server) Stop() {
	s.mu.Lock()
	srv := s.server
	s.server = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Restart serves again on the same address after Stop.
func (s *Server) Restart() {
	s.t.Helper()
	var l net.Listener
	var err error
	for range 50 { // the port may linger for a moment after Close
		if l, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("restarting the fake API server on %s: %v", s.addr, err)
	}
	s.serve(l)
}

// Handle serves pattern ("METHOD /path", as http.ServeMux reads it) with
// route, replacing the built-in one if there is one.
func (s *Server) Handle(pattern string, route Route) {
	s.mu.Lock()
	_, known := s.routes[pattern]
	s.routes[pattern] = route
	s.mu.Unlock()
	if !known {
		s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) { s.dispatch(pattern, w, r) })
	}
}

// AddToken makes TokenReview authenticate token as u.
func (s *Server) AddToken(token string, u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = u
}

// RemoveToken makes TokenReview reject token again.
func (s *Server) RemoveToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, token)
}

// Allow grants subject (a user name or a group) "get" on non-resource URLs,
// written as a ClusterRole's nonResourceURLs: "/metrics" exactly,
// "/metrics/*" under it, "*" everything.
func (s *Server) Allow(subject string, urls ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowed[subject] = append(s.allowed[subject], urls...)
}

// Revoke takes every grant of subject away: non-resource URLs and
// resource rules.
func (s *Server) Revoke(subject string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.allowed, subject)
	delete(s.resourceRules, subject)
}

// Forbid makes route answer 403 to the client, as when its ClusterRole
// lacks the verb; Forbid(route, false) grants it again.
func (s *Server) Forbid(route string, forbidden bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forbidden[route] = forbidden
}

// Fail makes every route answer code (500, 503, 429 …) with a
// metav1.Status; 0 heals it.
func (s *Server) Fail(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failCode = code
}

// SetDelay makes every answer wait d first (0: none).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// Calls is how many requests reached route, whatever the answer.
func (s *Server) Calls(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[route]
}

func (s *Server) dispatch(pattern string, w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls[pattern]++
	route := s.routes[pattern]
	delay, failCode, forbidden := s.delay, s.failCode, s.forbidden[pattern]
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if failCode != 0 {
		writeStatus(w, failCode, "InternalError", "fake API server failing on purpose")
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	_, known := s.tokens[token]
	s.mu.Unlock()
	if !ok || (token != s.ClientToken && !known) {
		writeStatus(w, http.StatusUnauthorized, metav1.StatusReasonUnauthorized, "Unauthorized")
		return
	}
	if forbidden {
		writeStatus(w, http.StatusForbidden, metav1.StatusReasonForbidden, s.forbiddenMessage(pattern))
		return
	}
	route(s, w, r)
}

// forbiddenMessage is RBAC's denial of the client, as the API server words
// it, for a route "METHOD /apis/<group>/<version>/<resource>".
func (s *Server) forbiddenMessage(pattern string) string {
	method, path, _ := strings.Cut(pattern, " ")
	verb := "get"
	if method == http.MethodPost {
		verb = "create"
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if last := segs[len(segs)-1]; strings.HasPrefix(last, "{") && len(segs) > 1 {
		segs = segs[:len(segs)-1] // a named object: its resource
	}
	resource, group := segs[len(segs)-1], ""
	if len(segs) >= 4 && segs[0] == "apis" {
		group = segs[1]
	}
	full := resource
	if group != "" {
		full += "." + group
	}
	return fmt.Sprintf("%s is forbidden: User %q cannot %s resource %q in API group %q at the cluster scope", full, s.ClientUser, verb, resource, group)
}

func (s *Server) tokenReview(w http.ResponseWriter, r *http.Request) {
	var tr authnv1.TokenReview
	if !decode(w, r, &tr) {
		return
	}
	s.mu.Lock()
	u, ok := s.tokens[tr.Spec.Token]
	s.mu.Unlock()
	tr.Spec = authnv1.TokenReviewSpec{Audiences: tr.Spec.Audiences} // the API server does not echo the token
	if ok {
		tr.Status = authnv1.TokenReviewStatus{Authenticated: true, User: authnv1.UserInfo{
			Username: u.Name, UID: u.UID, Groups: u.Groups, Extra: extra(u.Extra)}}
	} else {
		tr.Status = authnv1.TokenReviewStatus{Error: "[invalid bearer token, token lookup failed]"}
	}
	writeObject(w, http.StatusCreated, &tr)
}

func extra(in map[string][]string) map[string]authnv1.ExtraValue {
	if in == nil {
		return nil
	}
	out := map[string]authnv1.ExtraValue{}
	for k, v := range in {
		out[k] = v
	}
	return out
}

func (s *Server) subjectAccessReview(w http.ResponseWriter, r *http.Request) {
	var sar authzv1.SubjectAccessReview
	if !decode(w, r, &sar) {
		return
	}
	sar.Status = s.decide(append([]string{sar.Spec.User}, sar.Spec.Groups...), sar.Spec.ResourceAttributes, sar.Spec.NonResourceAttributes)
	writeObject(w, http.StatusCreated, &sar)
}

// matchURL is RBAC's nonResourceURLs matching: exact, "*" for all, or a
// prefix ending in "*".
func matchURL(rule, path string) bool {
	if rule == "*" || rule == path {
		return true
	}
	prefix, ok := strings.CutSuffix(rule, "*")
	return ok && strings.HasPrefix(path, prefix)
}

func decode(w http.ResponseWriter, r *http.Request, into any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
	if err == nil {
		err = json.Unmarshal(body, into)
	}
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, "decoding the request body: "+err.Error())
		return false
	}
	return true
}

func writeObject(w http.ResponseWriter, code int, obj any) {
	b, err := json.Marshal(obj)
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeStatus(w http.ResponseWriter, code int, reason metav1.StatusReason, msg string) {
	b, _ := json.Marshal(metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure, Message: msg, Reason: reason, Code: int32(code),
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
