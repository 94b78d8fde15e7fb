// Package selfsigned makes the serving certificate nodeagent uses when
// --web.kubernetes-auth is on and no certificate is configured: generated
// in memory at start, never written anywhere, so a DaemonSet needs no
// Secret. It encrypts the scraper's bearer token on the wire; nothing
// verifies it (Prometheus scrapes with insecureSkipVerify), so it is its
// own issuer and a new one comes with every start.
package selfsigned

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// Validity is how long a generated certificate is valid. A pod rarely
// lives as long; clients that skip verification do not look at it anyway.
const Validity = 365 * 24 * time.Hour

// New returns a self-signed ECDSA P-256 serving certificate for names (IP
// addresses or DNS names, empty and repeated ones skipped), valid from a
// little before now for Validity.
func New(names []string, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating the self-signed certificate's key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("generating the self-signed certificate's serial number: %w", err)
	}
	var ips []net.IP
	var dns []string
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	cn := "nodeagent"
	if len(dns) > 0 {
		cn = dns[0]
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"nodeagent self-signed"}},
		// A little slack for nodes whose clocks are behind the scraper's.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// Its own issuer: a client may pin it as a CA.
		IsCA:        true,
		IPAddresses: ips,
		DNSNames:    dns,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("signing the self-signed certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parsing the self-signed certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Fingerprint is the certificate's SHA-256 fingerprint as openssl prints
// it (upper-case hex pairs joined by colons), for the log line an operator
// compares with `openssl s_client | openssl x509 -fingerprint -sha256`.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// Names returns the certificate's subject alternative names, IP addresses
// first, for logs and tests.
func Names(cert *x509.Certificate) []string {
	var out []string
	for _, ip := range cert.IPAddresses {
		out = append(out, ip.String())
	}
	return append(out, slices.Clone(cert.DNSNames)...)
}
