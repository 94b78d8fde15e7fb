package collectors

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"
)

var update = flag.Bool("update", false, "rewrite golden expositions in testdata/ from the current output")

// fixtureEnv returns an Env whose paths point into testdata/<dir>: proc/,
// sys/, root/, udev/ and cgroup/ below it, each used only when present.
func fixtureEnv(t *testing.T, dir string) Env {
	t.Helper()
	return envAt(t, filepath.Join("testdata", dir))
}

// envAt is fixtureEnv over any directory, such as a t.TempDir() copy of a
// fixture that a test changes between scrapes.
func envAt(t testing.TB, root string) Env {
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
		// UTC, so that goldens that show the time zone do not depend on the
		// machine the tests run on.
		Now:        func() time.Time { return time.Unix(1700000000, 0).UTC() },
		Registerer: prometheus.NewRegistry(),
	}
	if _, err := os.Stat(env.Paths.ProcFS); err == nil {
		fs, err := procfs.NewFS(env.Paths.ProcFS)
		if err != nil {
			t.Fatalf("procfs fixture %s: %v", env.Paths.ProcFS, err)
		}
		env.Proc = fs
	}
	if _, err := os.Stat(env.Paths.SysFS); err == nil {
		fs, err := sysfs.NewFS(env.Paths.SysFS)
		if err != nil {
			t.Fatalf("sysfs fixture %s: %v", env.Paths.SysFS, err)
		}
		env.Sys = fs
	}
	return env
}

// exposition runs c once and returns its output in the text format, with the
// error Update returned.
func exposition(t *testing.T, c Collector) ([]byte, error) {
	t.Helper()
	ch := make(chan prometheus.Metric)
	var ms collected
	done := make(chan struct{})
	go func() {
		for m := range ch {
			ms = append(ms, m)
		}
		close(done)
	}()
	err := c.Update(context.Background(), ch)
	close(ch)
	<-done
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(ms)
	mfs, gerr := reg.Gather()
	if gerr != nil {
		t.Fatalf("collector output is inconsistent: %v", gerr)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("encoding %s: %v", mf.GetName(), err)
		}
	}
	return buf.Bytes(), err
}

// compareGolden runs c once and compares its exposition with the golden file
// testdata/<golden>; go test -update rewrites the file.
func compareGolden(t *testing.T, c Collector, golden string) {
	t.Helper()
	got, err := exposition(t, c)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	path := filepath.Join("testdata", golden)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (go test -update writes it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("exposition differs from %s (-want +got):\n%s", path, diff)
	}
}

// testLogger logs through t, so output shows only for failing tests.
func testLogger(t testing.TB) *slog.Logger { return testlog.New(t) }

// collected is a scrape's metrics as a prometheus.Collector, for a registry
// to check and encode.
type collected []prometheus.Metric

func (collected) Describe(chan<- *prometheus.Desc) {}

func (c collected) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c {
		ch <- m
	}
}
