package collectortest

import (
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/testlog"
)

// FixtureNow is the clock of every fixture Env: UTC, so that goldens that
// show the time zone do not depend on the machine the tests run on.
var FixtureNow = func() time.Time { return time.Unix(1700000000, 0).UTC() }

// Env returns an Env over a fixture tree at root: proc/, sys/, root/,
// udev/ and cgroup/ below it, each used only when present. root is a
// testdata/ path of the calling package, a copy made by CopyTree, or any
// other directory.
func Env(t testing.TB, root string) collectors.Env {
	t.Helper()
	env := collectors.Env{
		Logger: Logger(t),
		Paths: collectors.Paths{
			ProcFS:   filepath.Join(root, "proc"),
			SysFS:    filepath.Join(root, "sys"),
			RootFS:   filepath.Join(root, "root"),
			UdevData: filepath.Join(root, "udev"),
			CgroupFS: filepath.Join(root, "cgroup"),
		},
		Now:        FixtureNow,
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

// TempEnv is Env over root after creating root/proc and root/sys, for tests
// that write their fixture files at run time.
func TempEnv(t testing.TB, root string) collectors.Env {
	t.Helper()
	for _, d := range []string{"proc", "sys"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return Env(t, root)
}

// HostEnv is the Env of the binary with default flags: the real /proc, /sys
// and /, and the real clock.
func HostEnv(t testing.TB) collectors.Env {
	t.Helper()
	proc, err := procfs.NewFS("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	sys, err := sysfs.NewFS("/sys")
	if err != nil {
		t.Skipf("no /sys: %v", err)
	}
	return collectors.Env{
		Logger:     Logger(t),
		Paths:      collectors.Paths{ProcFS: "/proc", SysFS: "/sys", RootFS: "/", UdevData: "/run/udev/data", CgroupFS: "/sys/fs/cgroup"},
		Proc:       proc,
		Sys:        sys,
		Now:        time.Now,
		Registerer: prometheus.NewRegistry(),
	}
}

// HostTree is the absolute path of testdata/host, the fixture node shared by
// the host collectors' golden cases and cmd/nodeagent's end-to-end tests.
func HostTree(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("collectortest: cannot locate its own source")
	}
	return filepath.Join(filepath.Dir(file), "testdata", "host")
}

// Logger logs through t, so output shows only for failing tests.
func Logger(t testing.TB) *slog.Logger { return testlog.New(t) }
