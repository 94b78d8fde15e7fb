package fakekubelet

import (
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
)

// TestReserveHoldsThePort: while reserved, a stopped server's port refuses
// connections and no other listener can take it; released, it can be
// listened on again.
func TestReserveHoldsThePort(t *testing.T) {
	l, err := listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	// A connection the server closes lingers in TIME_WAIT on the port.
	go func() {
		if c, err := l.Accept(); err == nil {
			_ = c.Close()
		}
	}()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Read(make([]byte, 1))
	_ = c.Close()

	// Held while the listener is open, then the listener closes: the port
	// is never free.
	var r reservation
	r.hold(t, addr)
	if !r.held {
		t.Fatalf("%s not held beside its listener", addr)
	}
	_ = l.Close()
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dialling the reserved %s: %v, want connection refused", addr, err)
	}
	if l2, err := net.Listen("tcp", addr); err == nil {
		_ = l2.Close()
		t.Errorf("another listener took the reserved %s", addr)
	}
	_ = r.relisten(t, addr).Close()
	r.release() // idempotent
}

// TestClosedPort: the port refuses connections and cannot be listened on
// while the test runs.
func TestClosedPort(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", ClosedPort(t))
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dialling %s: %v, want connection refused", addr, err)
	}
	if l, err := net.Listen("tcp", addr); err == nil {
		_ = l.Close()
		t.Errorf("a listener took the closed port %s", addr)
	}
}
