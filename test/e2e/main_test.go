// Package e2e runs nodeagent's end-to-end tests on a real single-node
// cluster: the test cluster's cluster mode (test/cluster), with
// kube-state-metrics and Prometheus started here as host processes. The
// tests read the cluster's env file from NODEAGENT_E2E and are skipped
// without it; `make e2e-cluster` builds, starts and sets everything.
package e2e

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// cluster is the env file of the running test cluster, nil when the tests
// are skipped. The monitoring stack is started by the first test that
// needs it and stopped after the last test.
var (
	cluster      map[string]string
	stack        *monitoring
	stackErr     error
	stackStarted sync.Once
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	path := os.Getenv("NODEAGENT_E2E")
	if path == "" {
		return m.Run() // the cluster tests skip
	}
	env, err := fakekubelet.ReadEnvFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "NODEAGENT_E2E:", err)
		return 1
	}
	if env["CLUSTER_MODE"] != "cluster" {
		fmt.Fprintf(os.Stderr, "NODEAGENT_E2E: %s is of a cluster in %q mode; the e2e tests need cluster mode\n", path, env["CLUSTER_MODE"])
		return 1
	}
	cluster = env
	dir, err := os.MkdirTemp("", "nodeagent-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	stack = &monitoring{dir: dir}
	defer stack.stop()
	return m.Run()
}

// need skips t unless the cluster is there and returns its env.
func need(t *testing.T) map[string]string {
	t.Helper()
	if cluster == nil {
		t.Skip("end-to-end test on the test cluster: run make e2e-cluster")
	}
	return cluster
}

// needMonitoring is need, and kube-state-metrics and Prometheus running.
func needMonitoring(t *testing.T) *monitoring {
	t.Helper()
	env := need(t)
	stackStarted.Do(func() { stackErr = stack.startAll(env) })
	if stackErr != nil {
		t.Fatalf("starting kube-state-metrics and Prometheus: %v", stackErr)
	}
	return stack
}
