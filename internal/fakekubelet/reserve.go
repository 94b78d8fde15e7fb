package fakekubelet

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// reservation holds a stopped server's port: a TCP socket bound to the
// address but not listening. Connecting to it is refused, as to a stopped
// kubelet, while no other listener of a test running in parallel can be
// given the port in the meantime. Without it a parallel test's listener
// sometimes took the freed port, and "kubelet down" became a connection
// reset by a stranger, or worse, an answer.
type reservation struct {
	mu   sync.Mutex
	fd   int
	held bool
}

// hold binds a socket to addr (host:port, IPv4) without SO_REUSEADDR, so
// that Go's listeners, which set it, cannot share the port. When it cannot
// (the port lingers, or was taken already) the test sees whatever is there,
// and the log says so.
func (r *reservation) hold(t testing.TB, addr string) {
	fd, err := bindOnly(addr)
	if err != nil {
		t.Logf("fake server stopped, its port not held: %v", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked()
	r.fd, r.held = fd, true
}

// holdAny holds a port of 127.0.0.1 the kernel picks, and returns it.
func (r *reservation) holdAny() (int, error) {
	fd, err := bindOnly("127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		_ = unix.Close(fd)
		return 0, fmt.Errorf("reserving a port of 127.0.0.1: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked()
	r.fd, r.held = fd, true
	return sa.(*unix.SockaddrInet4).Port, nil
}

// relisten releases the port and listens on addr again, retrying while
// the closed server's port lingers.
func (r *reservation) relisten(t testing.TB, addr string) net.Listener {
	t.Helper()
	r.release()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", addr); err == nil {
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("listening again on %s: %v", addr, err)
	return nil
}

// release frees the port.
func (r *reservation) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.releaseLocked()
}

func (r *reservation) releaseLocked() {
	if r.held {
		_ = unix.Close(r.fd)
		r.held = false
	}
}

func bindOnly(addr string) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return -1, fmt.Errorf("reserving %s: not an IPv4 address and port", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("reserving %s: %w", addr, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("reserving %s: %w", addr, err)
	}
	return fd, nil
}
