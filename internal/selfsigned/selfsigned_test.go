package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNew(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	cert, err := New([]string{"10.0.0.5", "node-a", "", "node-a", "127.0.0.1", "::1", "localhost"}, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if diff := cmp.Diff([]string{"10.0.0.5", "127.0.0.1", "::1", "node-a", "localhost"}, Names(leaf)); diff != "" {
		t.Errorf("names (-want +got):\n%s", diff)
	}
	key, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		t.Errorf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !leaf.NotBefore.Before(now) || !leaf.NotAfter.Equal(now.Add(Validity)) {
		t.Errorf("valid %s to %s, want from before %s for %s", leaf.NotBefore, leaf.NotAfter, now, Validity)
	}
	// Pinned as its own root, it verifies for each of its names.
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, name := range []string{"10.0.0.5", "127.0.0.1", "node-a", "localhost"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: now}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other-node", CurrentTime: now}); err == nil {
		t.Error("verifies for a name it does not carry")
	}

	other, err := New([]string{"127.0.0.1"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(other.Leaf) == Fingerprint(leaf) {
		t.Error("two generated certificates have one fingerprint")
	}
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	cert, err := New([]string{"localhost"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cert.Leaf.Raw)
	want := strings.ToUpper(hex.EncodeToString(sum[:]))
	got := Fingerprint(cert.Leaf)
	if strings.ReplaceAll(got, ":", "") != want || len(got) != 32*3-1 {
		t.Errorf("fingerprint %s, want %s in colon-separated pairs", got, want)
	}
}
