package collectors

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

// writeTree writes files (path relative to a new temporary directory →
// content) and returns the directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// treeEnv returns an Env over root's proc/, sys/ and root/, as the binary
// builds it: proc/ and sys/ are created when missing, since the binary
// refuses to start without them.
func treeEnv(t *testing.T, root string) Env {
	t.Helper()
	for _, dir := range []string{"proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return envAt(t, root)
}

func contains(b []byte, s string) bool { return strings.Contains(string(b), s) }

// buildRegistered builds a registered collector through its flags, as the
// binary does, over env.
func buildRegistered(t *testing.T, name string, env Env, args ...string) (Collector, error) {
	t.Helper()
	reg, ok := registry[name]
	if !ok {
		t.Fatalf("no collector %q is registered", name)
	}
	app := kingpin.New("test", "")
	factory := reg.Setup(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	return factory(env)
}

// TestHostCollectorsWithoutSubsystem: on a host that lacks the subsystem
// (an empty /proc, /sys and rootfs), each collector serves nothing and
// reports no data or plain success, never a failure.
func TestHostCollectorsWithoutSubsystem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		noData bool // ErrNoData, as node_exporter; else plain success
	}{
		{"bonding", true}, {"conntrack", true}, {"edac", false}, {"hwmon", true},
		{"mdadm", true}, {"netclass", true}, {"nvme", true}, {"os", true},
		{"powersupplyclass", true}, {"rapl", true}, {"schedstat", true},
		{"softnet", true}, {"thermal_zone", false}, {"udp_queues", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := buildRegistered(t, tc.name, treeEnv(t, t.TempDir()))
			if err != nil {
				t.Fatal(err)
			}
			out, err := exposition(t, c)
			if len(out) != 0 {
				t.Errorf("served %q", out)
			}
			if gotNoData := errors.Is(err, ErrNoData); gotNoData != tc.noData || (err != nil && !gotNoData) {
				t.Errorf("Update error %v; want ErrNoData: %v", err, tc.noData)
			}
		})
	}
}
