package fakekubelet

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// RealEnv is the environment file of the real kubelet that the test
// cluster (test/cluster/cluster.sh up) starts (KUBELET_URL, KUBELET_CA,
// KUBELET_CLIENT_CERT, …), read from the file NODEAGENT_INTEGRATION names.
// Without that variable the test is skipped: `make integration` sets it,
// `make test` does not.
func RealEnv(t testing.TB) map[string]string {
	t.Helper()
	env := IntegrationEnv(t)
	for _, k := range []string{"KUBELET_URL", "KUBELET_CA", "KUBELET_CLIENT_CERT", "KUBELET_CLIENT_KEY", "KUBELET_NODE_NAME"} {
		if env[k] == "" {
			t.Fatalf("%s lacks %s", os.Getenv("NODEAGENT_INTEGRATION"), k)
		}
	}
	return env
}

// IntegrationEnv reads the KEY=value lines ("export " allowed) of the
// environment file NODEAGENT_INTEGRATION names, whatever keys it has; it
// skips the test when the variable is unset.
func IntegrationEnv(t testing.TB) map[string]string {
	t.Helper()
	path := os.Getenv("NODEAGENT_INTEGRATION")
	if path == "" {
		t.Skip("integration test against a real kubelet: run make integration")
	}
	env, err := ReadEnvFile(path)
	if err != nil {
		t.Fatalf("NODEAGENT_INTEGRATION: %v", err)
	}
	return env
}

// ReadEnvFile reads the test cluster's env file: `export KEY=value` lines,
// values unquoted when they are in double quotes; other lines are ignored.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "=")
		if ok && !strings.HasPrefix(k, "#") {
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			env[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return env, nil
}
