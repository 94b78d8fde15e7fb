package collectortest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// CopyTree copies dir (relative to the calling package's testdata/, or
// absolute; symlinked case directories are followed) into a fresh
// temporary directory that the test may change, and returns the copy.
// Symlinks inside the tree stay symlinks, as sysfs class entries are.
func CopyTree(t testing.TB, dir string) string {
	t.Helper()
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("testdata", dir)
	}
	src, err := filepath.EvalSymlinks(dir)
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

// WriteFile writes content to rel below root, creating directories.
func WriteFile(t testing.TB, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteFiles writes each path → content below root.
func WriteFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		WriteFile(t, root, name, content)
	}
}

// WriteTree writes files below a new temporary directory and returns it.
func WriteTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	WriteFiles(t, root, files)
	return root
}

// RemoveFile removes rel (a file or a whole directory) below root.
func RemoveFile(t testing.TB, root, rel string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}
