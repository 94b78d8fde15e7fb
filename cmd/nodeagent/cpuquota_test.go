package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/cgroup"
)

// TestCPUQuota reads the CPU quota of a process' own cgroup as each
// fixture's process sees it (testdata/cpuquota/README.md).
func TestCPUQuota(t *testing.T) {
	for _, tc := range []struct {
		dir     string
		cpus    float64
		ok      bool
		wantErr string
	}{
		{dir: "daemonset-v1", cpus: 0.5, ok: true},
		{dir: "unit-v2", cpus: 0.5, ok: true},
		{dir: "pod-v2-cgroupns", cpus: 1.5, ok: true},
		{dir: "parent-lower-v2", cpus: 0.2, ok: true},
		{dir: "none-hybrid"},
		{dir: "no-cgroupfs"},
		{dir: "garbage", wantErr: "a/cpu.max"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			root := filepath.Join("testdata", "cpuquota", tc.dir)
			cpus, ok, err := cpuQuota(fixtureProc(t, root), root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, cgroup.ErrParse) {
					t.Fatalf("cpuQuota = %v, %t, %v; want an error naming %s", cpus, ok, err, tc.wantErr)
				}
				return
			}
			if err != nil || ok != tc.ok || cpus != tc.cpus {
				t.Errorf("cpuQuota = %v, %t, %v; want %v, %t", cpus, ok, err, tc.cpus, tc.ok)
			}
		})
	}
}

// fixtureProc is process 1 of the proc directory under root.
func fixtureProc(t *testing.T, root string) procfs.Proc {
	t.Helper()
	fs, err := procfs.NewFS(filepath.Join(root, "proc"))
	if err != nil {
		t.Fatal(err)
	}
	proc, err := fs.Proc(1)
	if err != nil {
		t.Fatal(err)
	}
	return proc
}

// TestCPUQuotaUnreadable: a cgroup file the agent may not read is an
// error naming it, not a quota of none.
func TestCPUQuotaUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	root := t.TempDir()
	for name, data := range map[string]string{
		"proc/1/cgroup":           "0::/a\n",
		"proc/1/mountinfo":        "30 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
		"sys/fs/cgroup/a/cpu.max": "50000 100000\n",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(root, "sys/fs/cgroup/a/cpu.max"), 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cpuQuota(fixtureProc(t, root), root); !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "a/cpu.max") {
		t.Errorf("cpuQuota over an unreadable cpu.max: %v", err)
	}
}
