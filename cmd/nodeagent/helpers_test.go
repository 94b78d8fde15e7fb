package main

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/alecthomas/kingpin/v2"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// fixtureArgs point the host collectors at a fixture tree, one realistic
// node (internal/collectortest/testdata/host), so that tests do not depend on the
// machine.
var fixtureArgs = []string{
	"--path.procfs=../../internal/collectortest/testdata/host/proc",
	"--path.sysfs=../../internal/collectortest/testdata/host/sys",
	"--path.rootfs=../../internal/collectortest/testdata/host/root",
	"--path.udev.data=../../internal/collectortest/testdata/host/udev",
	// arp reads the kernel's neighbour table over netlink by default,
	// whatever --path.procfs says; the fixture's /proc/net/arp is what
	// tests want.
	"--no-collector.arp.netlink",
	// So does netdev, unless told to read <procfs>/net/dev.
	"--no-collector.netdev.netlink",
	// systemd asks the host's manager over D-Bus, which no fixture
	// holds (collectors/node tests it against a fake manager).
	"--no-collector.systemd",
	"--path.cgroupfs=../../collectors/cadvisor/testdata/cadvisor/bare-metal/cgroup",
	"--log.level=debug",
}

// kubeletPaths are the kubelet's passthrough paths that are on by default.
var kubeletPaths = []string{"/metrics/kubelet", "/metrics/probes", "/metrics/slis"}

// parseServe parses serve flags the way run does.
func parseServe(t testing.TB, args ...string) *serveOptions {
	t.Helper()
	app := kingpin.New("nodeagent", "")
	app.Terminate(nil)
	opts := addServeFlags(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	opts.getenv = func(string) string { return "" } // no NODE_IP/NODE_NAME from the test's environment
	return opts
}

// startAgent runs the serve command with args on a 127.0.0.1 listener and
// returns its address; the agent stops when the test ends.
func startAgent(t *testing.T, args ...string) string {
	t.Helper()
	_, addr, _ := runAgent(t, args...)
	return addr
}

// runAgent is startAgent returning the agent and its log too.
func runAgent(t *testing.T, args ...string) (*agent, string, *testlog.Buffer) {
	t.Helper()
	return runAgentWith(t, nil, args...)
}

// runAgentWith is runAgent with a hook that changes the parsed options
// (the environment, the clock) before the agent is built.
func runAgentWith(t *testing.T, hook func(*serveOptions), args ...string) (*agent, string, *testlog.Buffer) {
	t.Helper()
	opts := parseServe(t, append(append([]string{}, fixtureArgs...), args...)...)
	if hook != nil {
		hook(opts)
	}
	logs := &testlog.Buffer{}
	a, err := newAgent(opts, logs)
	if err != nil {
		t.Fatalf("newAgent: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, []net.Listener{l}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent stopped with %v", err)
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", logs.String())
		}
	})
	return a, l.Addr().String(), logs
}

func get(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func tlsClient(t *testing.T, ca *fakekubelet.CA, certPEM, keyPEM []byte) *http.Client {
	t.Helper()
	cfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	if certPEM != nil {
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// testLogger logs through t, so output shows only for failing tests.
func testLogger(t *testing.T) *slog.Logger { return collectortest.Logger(t) }
