package fakekubelet

import (
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// reservation holds a stopped server's port: a TCP socket bound to the
// address but not listening. Connecting to it is refused, as to a stopped
// kubelet, while no other listener of a test running in parallel can be
// given the port in the meantime. Without it a parallel test's listener
// sometimes took the freed port, and "kubelet down" became a connection
// reset by a stranger, or worse, an answer.
type reservation struct {
	fd   int
	held bool
}

// reserve binds a socket to addr (host:port, IPv4) without SO_REUSEADDR, so
// that Go's listeners, which set it, cannot share the port.
func reserve(addr string) (reservation, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		return reservation{}, fmt.Errorf("reserving %s: not an IPv4 address and port", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return reservation{}, fmt.Errorf("reserving %s: %w", addr, err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		_ = unix.Close(fd)
		return reservation{}, fmt.Errorf("reserving %s: %w", addr, err)
	}
	return reservation{fd: fd, held: true}, nil
}

// release frees the port for the server's restart.
func (r *reservation) release() {
	if r.held {
		_ = unix.Close(r.fd)
		*r = reservation{}
	}
}
