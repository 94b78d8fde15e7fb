// Package fakekubelet is a kubelet for tests: TLS on 127.0.0.1 with its own
// CA, the kubelet's authentication and authorization behaviour (401
// "Unauthorized" without an accepted client certificate or token, 403 with
// the kubelet's own "Forbidden (user=…, verb=get, resource=nodes,
// subresource(s)=[…])" message when RBAC would deny), and the real kubelet
// payloads in testdata/ as bodies. It also provides the
// read-only port's stand-ins: a plain-HTTP read-only server, a listener that
// never answers, and a port where nothing listens; and the metrics
// endpoints of the node's other components (kube-proxy, containerd, CRI-O)
// with their real payloads.
//
// Only tests import it; kubeletclient's, the collectors' and
// cmd/nodeagent's share it.
package fakekubelet

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"embed"
	_ "embed"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// ProbesBody is a /metrics/probes body in the kubelet's format, for pods of
// the real 1.35 /pods capture that have probes (the real-kubelet capture has
// no probes).
//
//go:embed testdata/metrics-probes.txt
var ProbesBody []byte

// TextFormat is the kubelet's Content-Type for text metrics.
const TextFormat = "text/plain; version=0.0.4; charset=utf-8"

// Subresources of nodes that the kubelet authorizes its paths as.
const (
	Metrics = "metrics"
	Stats   = "stats"
	Pods    = "pods"
	Healthz = "healthz"
	Proxy   = "proxy"
)

// Identity is a user the fake kubelet authenticates, with the nodes
// subresources RBAC grants it ("*" for all).
type Identity struct {
	User    string
	Allowed []string
}

func (id Identity) may(sub string) bool {
	return slices.Contains(id.Allowed, "*") || slices.Contains(id.Allowed, sub)
}

// Kubelet is a fake kubelet on 127.0.0.1.
type Kubelet struct {
	// URL is the base URL of its authenticated port.
	URL string
	// CAFile verifies its serving certificate; ClientCertFile and
	// ClientKeyFile are a client certificate it accepts (user
	// "nodeagent-cert", all subresources); Dir holds them.
	CAFile, ClientCertFile, ClientKeyFile, Dir string

	t        testing.TB
	addr     string
	reserved reservation // the port while stopped
	tlsCfg   *tls.Config
	clientCA *x509.CertPool

	mu        sync.Mutex
	server    *http.Server
	tokens    map[string]Identity
	certUsers map[string]Identity // by certificate CN
	anonymous *Identity           // nil: anonymous authentication off
	bodies    map[string]body
	handlers  map[string]http.HandlerFunc
	requests  map[string]int
	tokensOn  map[string]int // requests per token seen
}

type body struct {
	contentType string
	data        []byte
}

// New starts a fake kubelet serving the real payloads: /metrics (1.37),
// /metrics/resource (1.37), /metrics/probes (ProbesBody), /metrics/slis,
// /pods (1.35), /stats/summary (1.35) and /healthz. Anonymous
// authentication is off, no token is accepted until SetToken. It stops
// when the test ends.
func New(t testing.TB) *Kubelet {
	t.Helper()
	dir := t.TempDir()
	serving := NewCA(t, "fake-kubelet-serving-ca")
	clients := NewCA(t, "fake-kubelet-client-ca")
	certPEM, keyPEM := serving.Issue(t, "fake-kubelet", x509.ExtKeyUsageServerAuth)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cc, ck := clients.Issue(t, "nodeagent-cert", x509.ExtKeyUsageClientAuth)
	k := &Kubelet{
		Dir:            dir,
		CAFile:         WriteFile(t, dir, "ca.crt", serving.PEM),
		ClientCertFile: WriteFile(t, dir, "client.crt", cc),
		ClientKeyFile:  WriteFile(t, dir, "client.key", ck),
		t:              t,
		clientCA:       clients.Pool(),
		tokens:         map[string]Identity{},
		certUsers:      map[string]Identity{"nodeagent-cert": {User: "nodeagent-cert", Allowed: []string{"*"}}},
		handlers:       map[string]http.HandlerFunc{},
		requests:       map[string]int{},
		tokensOn:       map[string]int{},
		bodies: map[string]body{
			"/metrics":          {TextFormat, Payload(t, "k8s-1.37-local_metrics.txt")},
			"/metrics/resource": {TextFormat, Payload(t, "k8s-1.37-local_metrics-resource.txt")},
			"/metrics/probes":   {TextFormat, ProbesBody},
			"/metrics/slis":     {TextFormat, Payload(t, "metrics-slis.txt")},
			"/pods":             {"application/json", Payload(t, "k8s-1.35_pods.json")},
			"/stats/summary":    {"application/json", Payload(t, "k8s-1.35_stats-summary.json")},
			"/healthz":          {"text/plain; charset=utf-8", []byte("ok")},
		},
	}
	// The kubelet requests a client certificate but verifies it itself,
	// so a certificate from another CA gets 401, not a failed handshake.
	k.tlsCfg = &tls.Config{Certificates: []tls.Certificate{pair}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
	l, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k.addr = l.Addr().String()
	k.URL = "https://" + k.addr
	k.serve(l)
	t.Cleanup(func() {
		k.Stop()
		k.reserved.release()
	})
	return k
}

func (k *Kubelet) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(k.handle), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: k.tlsCfg, ErrorLog: log.New(io.Discard, "", 0)}
	k.mu.Lock()
	k.server = srv
	k.mu.Unlock()
	go func() { _ = srv.ServeTLS(l, "", "") }()
}

// Stop closes the kubelet's port: connections are then refused.
func (k *Kubelet) Stop() {
	k.mu.Lock()
	srv := k.server
	k.server = nil
	k.mu.Unlock()
	if srv != nil {
		k.reserved.stop(k.t, k.addr, srv)
	}
}

// Restart serves again on the same address after Stop.
func (k *Kubelet) Restart() {
	k.t.Helper()
	k.serve(k.reserved.relisten(k.t, k.addr))
}

// Host is the kubelet's host:port.
func (k *Kubelet) Host() string { return k.addr }

// SetToken makes the kubelet accept token as id (a TokenReview that
// succeeds); an empty Allowed list authenticates but authorizes nothing.
func (k *Kubelet) SetToken(token string, id Identity) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.tokens[token] = id
}

// RevokeToken makes the kubelet answer 401 to token.
func (k *Kubelet) RevokeToken(token string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.tokens, token)
}

// SetAnonymous turns anonymous authentication on (as system:anonymous,
// allowed these subresources) or, with nil, off.
func (k *Kubelet) SetAnonymous(allowed []string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if allowed == nil {
		k.anonymous = nil
		return
	}
	k.anonymous = &Identity{User: "system:anonymous", Allowed: allowed}
}

// SetBody replaces the body served on path.
func (k *Kubelet) SetBody(path, contentType string, data []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.bodies[path] = body{contentType, data}
}

// Handle serves path with h after authentication and authorization, in
// place of a body: slow answers, huge answers, errors.
func (k *Kubelet) Handle(path string, h http.HandlerFunc) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.handlers[path] = h
}

// Requests is how many requests reached path (authorized or not).
func (k *Kubelet) Requests(path string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.requests[path]
}

// TokenRequests is how many requests carried token.
func (k *Kubelet) TokenRequests(token string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.tokensOn[token]
}

func (k *Kubelet) handle(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	k.requests[r.URL.Path]++
	id, ok := k.authenticate(r)
	b, haveBody := k.bodies[r.URL.Path]
	h := k.handlers[r.URL.Path]
	k.mu.Unlock()
	if !ok {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	subs := subresources(r.URL.Path)
	if !slices.ContainsFunc(subs, id.may) {
		http.Error(w, fmt.Sprintf("Forbidden (user=%s, verb=get, resource=nodes, subresource(s)=%v)\n", id.User, subs), http.StatusForbidden)
		return
	}
	switch {
	case h != nil:
		h(w, r)
	case haveBody:
		w.Header().Set("Content-Type", b.contentType)
		_, _ = w.Write(b.data)
	default:
		http.NotFound(w, r)
	}
}

// authenticate is the kubelet's order: a verified client certificate, else
// a bearer token, else anonymous when enabled. k.mu is held.
func (k *Kubelet) authenticate(r *http.Request) (Identity, bool) {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		leaf := r.TLS.PeerCertificates[0]
		inter := x509.NewCertPool()
		for _, c := range r.TLS.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: k.clientCA, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		if err == nil {
			id, ok := k.certUsers[leaf.Subject.CommonName]
			if !ok {
				id = Identity{User: leaf.Subject.CommonName}
			}
			return id, true
		}
	}
	if token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		k.tokensOn[token]++
		id, ok := k.tokens[token]
		return id, ok
	}
	if k.anonymous != nil {
		return *k.anonymous, true
	}
	return Identity{}, false
}

// subresources mirrors the kubelet's mapping (pkg/kubelet/server/auth.go,
// with KubeletFineGrainedAuthz on): the fine-grained subresource first,
// proxy as the fallback.
func subresources(path string) []string {
	under := func(p string) bool { return path == p || strings.HasPrefix(path, p+"/") }
	switch {
	case under("/pods"):
		return []string{Pods, Proxy}
	case under("/healthz"):
		return []string{Healthz, Proxy}
	case under("/stats"):
		return []string{Stats}
	case under("/metrics"):
		return []string{Metrics}
	}
	return []string{Proxy}
}

// ReadOnlyServer answers like a kubelet's read-only port.
type ReadOnlyServer struct {
	Port     int
	mu       sync.Mutex
	requests int
}

// Requests is how many requests the server has had.
func (s *ReadOnlyServer) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// ReadOnly starts a plain-HTTP server answering like a kubelet's read-only
// port: /healthz "ok", /pods the real 1.35 pod list, no authentication.
func ReadOnly(t testing.TB) *ReadOnlyServer {
	t.Helper()
	pods := Payload(t, "k8s-1.35_pods.json")
	s := &ReadOnlyServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("GET /pods", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(pods)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.Port = l.Addr().(*net.TCPAddr).Port
	return s
}

// Silent starts a listener on 127.0.0.1 that accepts connections and never
// answers (a wedged process), and returns its port.
func Silent(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return l.Addr().(*net.TCPAddr).Port
}

// ClosedPort returns a port on 127.0.0.1 where nothing listens, held for
// the test's life by a socket bound to it but not listening: connections
// are refused, and no listener of a test running in parallel can be given
// the port meanwhile.
func ClosedPort(t testing.TB) int {
	t.Helper()
	var r reservation
	port, err := r.holdAny()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.release)
	return port
}

// payloads holds real kubelet answers (testdata/README.md gives their
// provenance); only tests import this package, so only test binaries carry
// them.
//
//go:embed testdata/*.txt testdata/*.json
var payloads embed.FS

// Payload returns one of the real kubelet payloads in testdata/ by file name.
func Payload(t testing.TB, name string) []byte {
	t.Helper()
	b, err := payloads.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("fakekubelet: no payload %q: %v", name, err)
	}
	return b
}

// CA is a throwaway certificate authority.
type CA struct {
	PEM  []byte
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert: cert, key: key}
}

// Pool is a cert pool holding the CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue signs a leaf for cn, valid for names (IP addresses or DNS names;
// 127.0.0.1 and localhost when none are given), and returns its
// certificate and key in PEM.
func (ca *CA) Issue(t testing.TB, cn string, usage x509.ExtKeyUsage, names ...string) (certPEM, keyPEM []byte) {
	t.Helper()
	if len(names) == 0 {
		names = []string{"127.0.0.1", "localhost"}
	}
	var ips []net.IP
	var dns []string
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  ips,
		DNSNames:     dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// WriteFile writes data to dir/name and returns the path.
func WriteFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
