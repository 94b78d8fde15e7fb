package collectors

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tempEnv returns an Env over root (proc/, sys/, root/, udev/ below it),
// for tests that write their fixture files at run time; proc/ and sys/ are
// created so that procfs and sysfs open.
func tempEnv(t *testing.T, root string) Env {
	t.Helper()
	for _, d := range []string{"proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return envAt(t, root)
}

// writeFiles writes name → content below root, creating directories.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		writeFixtureFile(t, root, name, content)
	}
}

// seriesLines returns the exposition's sample lines that start with prefix,
// sorted.
func seriesLines(t *testing.T, c Collector, prefix string) ([]string, error) {
	t.Helper()
	out, err := exposition(t, c)
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, prefix) {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines, err
}
