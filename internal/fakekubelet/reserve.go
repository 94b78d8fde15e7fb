package fakekubelet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
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
//
// The servers listen with SO_REUSEPORT (listen), and so does the
// reservation, so that it is bound before the server closes and a new
// listener before it is released: the port is never free, not even for
// the moment between the two. (Binding it only after the close failed
// when the closed server's connections lingered in TIME_WAIT, and the
// port was then left to the next socket that asked.)
type reservation struct {
	mu   sync.Mutex
	fd   int
	held bool
}

// hold binds a socket to addr (host:port, IPv4) with SO_REUSEPORT and
// without SO_REUSEADDR: it shares the port with the server's listener
// until that closes, and no other listener (Go's set SO_REUSEADDR, not
// SO_REUSEPORT) can take it. Call it before closing the server. When it
// cannot, the test sees whatever is there, and the log says so.
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

// stop closes srv, serving on addr, and holds its port: held while the
// listener is still open, and returning once a connection to addr is
// refused (waitClosed).
func (r *reservation) stop(t testing.TB, addr string, srv *http.Server) {
	t.Helper()
	r.hold(t, addr)
	_ = srv.Close()
	waitClosed(t, addr)
}

// waitClosed returns once a connection to addr is refused: the closed
// server's listening socket is closed by the goroutine that was in Accept
// when it wakes, and until then a client's handshake completes and is then
// reset ("connection reset by peer" where a stopped kubelet refuses).
func waitClosed(t testing.TB, addr string) {
	t.Helper()
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		_ = c.Close()
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("%s still accepts connections after its server closed", addr)
}

// relisten listens on addr again, beside the reservation, and then
// releases it. It retries a while in case the port was not held.
func (r *reservation) relisten(t testing.TB, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = listen(addr); err == nil {
			r.release()
			return l
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.release()
	t.Fatalf("listening again on %s: %v", addr, err)
	return nil
}

// listen listens on addr (127.0.0.1:0 for a new port) with SO_REUSEPORT,
// for a server whose port a reservation may hold.
func listen(addr string) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setReusePort(int(fd)) }); err != nil {
			return err
		}
		return serr
	}}
	return lc.Listen(context.Background(), "tcp", addr)
}

func setReusePort(fd int) error {
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
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
	if err := setReusePort(fd); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("reserving %s: %w", addr, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		_ = unix.Close(fd)
		return -1, fmt.Errorf("reserving %s: %w", addr, err)
	}
	return fd, nil
}
