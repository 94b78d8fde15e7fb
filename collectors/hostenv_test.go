package collectors

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"
)

// tempEnv returns an Env over root (proc/, sys/, root/, udev/ below it),
// for tests that write their fixture files at run time.
func tempEnv(t *testing.T, root string) Env {
	t.Helper()
	env := Env{
		Logger: testLogger(t),
		Paths: Paths{
			ProcFS:   filepath.Join(root, "proc"),
			SysFS:    filepath.Join(root, "sys"),
			RootFS:   filepath.Join(root, "root"),
			UdevData: filepath.Join(root, "udev"),
		},
		Now:        func() time.Time { return time.Unix(1700000000, 0) },
		Registerer: prometheus.NewRegistry(),
	}
	for _, d := range []string{env.Paths.ProcFS, env.Paths.SysFS} {
		if err := os.MkdirAll(d, 0o755); err != nil {
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

// writeFiles writes name → content below root, creating directories.
func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
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

// syncLog collects log output from concurrent collectors.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *syncLog) contains(s string) bool { return strings.Contains(l.String(), s) }

func (l *syncLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
