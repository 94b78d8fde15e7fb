package collectors

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

// buildCollector builds the named collector through its registration and
// flags, as the binary does, over a fixture tree: dir is relative to
// testdata/ or absolute (a copy made by copyFixture).
func buildCollector(t *testing.T, name, dir string, args ...string) (Collector, error) {
	t.Helper()
	reg, ok := registry[name]
	if !ok {
		t.Fatalf("no collector named %q is registered", name)
	}
	app := kingpin.New("test", "")
	factory := reg.Setup(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("testdata", dir)
	}
	return factory(envAt(t, dir))
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
