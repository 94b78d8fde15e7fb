package fakekubelet

import (
	"errors"
	"net"
	"syscall"
	"testing"
)

// TestReserveHoldsThePort: while reserved, a stopped server's port refuses
// connections and no other listener can take it; released, it can be
// listened on again.
func TestReserveHoldsThePort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	r, err := reserve(addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dialling the reserved %s: %v, want connection refused", addr, err)
	}
	if l2, err := net.Listen("tcp", addr); err == nil {
		_ = l2.Close()
		t.Errorf("another listener took the reserved %s", addr)
	}
	r.release()
	r.release() // idempotent
	l3, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listening on %s after release: %v", addr, err)
	}
	_ = l3.Close()
}
