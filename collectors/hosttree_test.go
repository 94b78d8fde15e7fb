package collectors

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"
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

// treeEnv returns an Env over root's proc/, sys/ and root/, which need not
// exist: procfs and sysfs readers are built as the binary builds them.
func treeEnv(t *testing.T, root string) Env {
	t.Helper()
	env := Env{
		Logger: testLogger(t),
		Paths: Paths{
			ProcFS:   filepath.Join(root, "proc"),
			SysFS:    filepath.Join(root, "sys"),
			RootFS:   filepath.Join(root, "root"),
			UdevData: filepath.Join(root, "udev"),
			CgroupFS: filepath.Join(root, "cgroup"),
		},
		Now:        func() time.Time { return time.Unix(1700000000, 0).UTC() },
		Registerer: prometheus.NewRegistry(),
	}
	for _, dir := range []string{env.Paths.ProcFS, env.Paths.SysFS} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if env.Proc, err = procfs.NewFS(env.Paths.ProcFS); err != nil {
		t.Fatal(err)
	}
	if env.Sys, err = sysfs.NewFS(env.Paths.SysFS); err != nil {
		t.Fatal(err)
	}
	return env
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
