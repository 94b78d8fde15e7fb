package collectors

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"
)

// buildCollector builds the named collector through its registration and
// flags, as the binary does, over a fixture tree: dir is relative to
// testdata/ or absolute (a copy made by copyFixture).
func buildCollector(t *testing.T, name, dir string, args ...string) (Collector, error) {
	t.Helper()
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("testdata", dir)
	}
	return buildCollectorEnv(t, name, envAt(t, dir), args...)
}

// buildCollectorEnv builds the named collector through its registration and
// flags over env.
func buildCollectorEnv(t testing.TB, name string, env Env, args ...string) (Collector, error) {
	t.Helper()
	reg, ok := Lookup(name)
	if !ok {
		t.Fatalf("no collector named %q is registered", name)
	}
	app := kingpin.New("test", "")
	factory := reg.Setup(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	return factory(env)
}

func mustBuildCollector(t *testing.T, name, dir string, args ...string) Collector {
	t.Helper()
	c, err := buildCollector(t, name, dir, args...)
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	return c
}

// copyFixture copies testdata/<dir> (following symlinked case directories)
// into a fresh temporary directory that the test may change, and returns it.
func copyFixture(t *testing.T, dir string) string {
	t.Helper()
	src, err := filepath.EvalSymlinks(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			// sysfs trees link class entries to devices; keep the links.
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		}
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
	return dst
}

// removeFixtureFile removes rel (a file or a whole directory) below root.
func removeFixtureFile(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

// writeFixtureFile writes content to rel below root, creating directories.
func writeFixtureFile(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), fs.FileMode(0o644)); err != nil {
		t.Fatal(err)
	}
}

// hostEnv is the Env of the binary with default flags: the real /proc,
// /sys and /.
func hostEnv(t *testing.T) Env {
	t.Helper()
	proc, err := procfs.NewFS("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	sys, err := sysfs.NewFS("/sys")
	if err != nil {
		t.Skipf("no /sys: %v", err)
	}
	return Env{
		Logger:     testLogger(t),
		Paths:      Paths{ProcFS: "/proc", SysFS: "/sys", RootFS: "/", UdevData: "/run/udev/data", CgroupFS: "/sys/fs/cgroup"},
		Proc:       proc,
		Sys:        sys,
		Now:        time.Now,
		Registerer: prometheus.NewRegistry(),
	}
}

// compareWithNodeExporterOnHost runs our collector and node_exporter's of
// the same name on this machine, each with its default paths plus the given
// flags, and requires the same families with the same types, help and label
// names. Values are not compared: the host changes between the two scrapes.
// It is part of `make node-conformance` (NODE_EXPORTER_BIN), for collectors
// whose input node_exporter cannot be pointed at a fixture (netlink,
// syscalls, fixed paths).
func compareWithNodeExporterOnHost(t *testing.T, name string, args ...string) {
	t.Helper()
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	c := mustBuildCollectorEnv(t, name, hostEnv(t), args...)
	out, err := exposition(t, c)
	if err != nil && !errors.Is(err, ErrNoData) {
		t.Fatalf("Update on this host: %v", err)
	}
	ours := parseExposition(t, out)
	theirs := scrapeNodeExporter(t, bin, append([]string{
		"--web.listen-address=127.0.0.1:0", "--collector.disable-defaults", "--collector." + name,
	}, args...))
	if diff := cmp.Diff(familyShapes(theirs), familyShapes(ours)); diff != "" {
		t.Errorf("families on this host differ (-node_exporter +nodeagent):\n%s", diff)
	}
	t.Logf("%d families compared", len(ours))
}

// familyShapes renders each family as its type, help and sorted label names.
func familyShapes(mfs map[string]*dto.MetricFamily) map[string]string {
	out := map[string]string{}
	for name, mf := range mfs {
		labels := map[string]bool{}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		out[name] = fmt.Sprintf("%s %q %v", mf.GetType(), mf.GetHelp(), slices.Sorted(maps.Keys(labels)))
	}
	return out
}

func mustBuildCollectorEnv(t *testing.T, name string, env Env, args ...string) Collector {
	t.Helper()
	c, err := buildCollectorEnv(t, name, env, args...)
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	return c
}

// mustLookup returns the registration of the collector named name.
func mustLookup(t testing.TB, name string) Registration {
	t.Helper()
	r, ok := Lookup(name)
	if !ok {
		t.Fatalf("no collector named %q is registered", name)
	}
	return r
}
