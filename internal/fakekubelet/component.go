package fakekubelet

import (
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// Component is the metrics endpoint of a node component other than the
// kubelet (kube-proxy, containerd, CRI-O): plain HTTP on 127.0.0.1, as they
// serve it, answering a real payload from testdata/ on its metrics path.
// Like the fake kubelet it can be stopped, restarted on the same address,
// and made to answer otherwise (slow, huge, garbage).
type Component struct {
	// URL is the full URL of its metrics path.
	URL string

	t        testing.TB
	addr     string
	reserved reservation // the port while stopped
	path     string

	mu       sync.Mutex
	server   *http.Server
	body     body
	handler  http.HandlerFunc
	requests int
}

// KubeProxy serves a kube-proxy's /metrics (v1.21.1, iptables mode).
func KubeProxy(t testing.TB) *Component {
	return NewComponent(t, "/metrics", TextFormat, Payload(t, "kube-proxy-1.21.1_metrics.txt"))
}

// Containerd serves containerd's /v1/metrics (1.6.20, one running task in
// namespace k8s.io).
func Containerd(t testing.TB) *Component {
	return NewComponent(t, "/v1/metrics", TextFormat, Payload(t, "containerd-1.6.20_metrics.txt"))
}

// CRIO serves CRI-O's /metrics.
func CRIO(t testing.TB) *Component {
	return NewComponent(t, "/metrics", TextFormat, Payload(t, "crio_metrics.txt"))
}

// NewComponent serves data on path of a new 127.0.0.1 port until the test
// ends; other paths answer 404.
func NewComponent(t testing.TB, path, contentType string, data []byte) *Component {
	t.Helper()
	l, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Component{t: t, addr: l.Addr().String(), path: path, body: body{contentType, data}}
	c.URL = "http://" + c.addr + path
	c.serve(l)
	t.Cleanup(func() {
		c.Stop()
		c.reserved.release()
	})
	return c
}

func (c *Component) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(c.handle), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	c.mu.Lock()
	c.server = srv
	c.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

func (c *Component) handle(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.requests++
	b, h := c.body, c.handler
	c.mu.Unlock()
	switch {
	case r.URL.Path != c.path:
		http.NotFound(w, r)
	case h != nil:
		h(w, r)
	default:
		w.Header().Set("Content-Type", b.contentType)
		_, _ = w.Write(b.data)
	}
}

// Stop closes the port: connections are then refused.
func (c *Component) Stop() {
	c.mu.Lock()
	srv := c.server
	c.server = nil
	c.mu.Unlock()
	if srv != nil {
		c.reserved.stop(c.t, c.addr, srv)
	}
}

// Restart serves again on the same address after Stop.
func (c *Component) Restart() {
	c.t.Helper()
	c.serve(c.reserved.relisten(c.t, c.addr))
}

// Handle answers the metrics path with h instead of the payload: slow,
// huge or garbage answers.
func (c *Component) Handle(h http.HandlerFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.handler = h
}

// Requests is how many requests the component has had.
func (c *Component) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}
