package cgroup

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

func TestSubtreeTotals(t *testing.T) {
	t.Parallel()
	cgroup2 := func(point string, opts ...string) *procfs.MountInfo {
		super := map[string]string{"rw": ""}
		for _, o := range opts {
			super[o] = ""
		}
		return &procfs.MountInfo{MountPoint: point, FSType: "cgroup2", SuperOptions: super}
	}
	rootfs := &procfs.MountInfo{MountPoint: "/", FSType: "ext4"}
	tmpfs := &procfs.MountInfo{MountPoint: "/tmp", FSType: "tmpfs"}
	// The PSI files count their subtree on every kernel that has them.
	psi := Files(FileCPUPressure, FileMemoryPressure, FileIOPressure)
	swap, both := Files(FileMemorySwapCurrent)|psi, Files(FileMemorySwapCurrent, FileMemoryEvents)|psi
	for _, tc := range []struct {
		name      string
		root      string
		mounts    []*procfs.MountInfo
		mountsErr error
		release   string
		want      FileSet
	}{
		{"defaults", "/sys/fs/cgroup", []*procfs.MountInfo{rootfs, cgroup2("/sys/fs/cgroup", "nsdelegate", "memory_recursiveprot")}, nil, "6.1.0-28-amd64", both},
		{"memory_localevents", "/sys/fs/cgroup", []*procfs.MountInfo{rootfs, cgroup2("/sys/fs/cgroup", "nsdelegate", "memory_localevents")}, nil, "6.1.0", swap},
		{"the host's hierarchy in a container", "/host/sys/fs/cgroup", []*procfs.MountInfo{rootfs, cgroup2("/sys/fs/cgroup", "memory_localevents"), cgroup2("/host/sys/fs/cgroup")}, nil, "6.8.0", both},
		{"the last mount on a point wins", "/sys/fs/cgroup", []*procfs.MountInfo{rootfs, cgroup2("/sys/fs/cgroup"), cgroup2("/sys/fs/cgroup", "memory_localevents")}, nil, "6.8.0", swap},
		{"a cgroup below the mount", "/sys/fs/cgroup/kubepods.slice", []*procfs.MountInfo{rootfs, cgroup2("/sys/fs/cgroup", "memory_localevents")}, nil, "6.8.0", swap},
		{"a prefix that is not a parent", "/sys/fs/cgroupx", []*procfs.MountInfo{rootfs, cgroup2("/sys/fs/cgroup", "memory_localevents")}, nil, "6.8.0", both},
		{"Linux 5.2", "/sys/fs/cgroup", []*procfs.MountInfo{cgroup2("/sys/fs/cgroup")}, nil, "5.2.0", both},
		{"before Linux 5.2, memory.events was local", "/sys/fs/cgroup", []*procfs.MountInfo{cgroup2("/sys/fs/cgroup")}, nil, "5.1.21", swap},
		{"an unreadable release", "/sys/fs/cgroup", []*procfs.MountInfo{cgroup2("/sys/fs/cgroup")}, nil, "", swap},
		{"mounts unreadable", "/sys/fs/cgroup", nil, errors.New("permission denied"), "6.1.0", swap},
		{"a fixture on tmpfs", "/tmp/tree/cgroup", []*procfs.MountInfo{rootfs, tmpfs}, nil, "6.1.0", both},
	} {
		if got := subtreeTotals(tc.root, tc.mounts, tc.mountsErr, tc.release); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestKernelAtLeast(t *testing.T) {
	t.Parallel()
	for release, want := range map[string]bool{
		"6.18.44-fc-v1272": true,
		"5.2.0":            true,
		"5.2":              true,
		"5.10.0-30-amd64":  true,
		"5.1.21":           false,
		"4.19.0-27-amd64":  false,
		"5.2-rc1":          true,
		"5.10-rc7":         true,
		"6":                false,
		"":                 false,
		"x.y":              false,
	} {
		if got := kernelAtLeast(release, 5, 2); got != want {
			t.Errorf("kernelAtLeast(%q, 5, 2) = %v, want %v", release, got, want)
		}
	}
}

func TestStatsZero(t *testing.T) {
	t.Parallel()
	both := Files(FileMemorySwapCurrent, FileMemoryEvents)
	for _, tc := range []struct {
		name string
		st   Stats
		want FileSet
	}{
		{"both zero", Stats{Present: both | Files(FileMemoryCurrent), MemoryCurrent: Value{V: 5}}, both},
		{"swap in use", Stats{Present: both, SwapCurrent: Value{V: 4096}}, Files(FileMemoryEvents)},
		{"an OOM", Stats{Present: both, MemoryEvents: MemoryEvents{OOM: 1}}, Files(FileMemorySwapCurrent)},
		{"an OOM kill", Stats{Present: both, MemoryEvents: MemoryEvents{OOMKill: 1}}, Files(FileMemorySwapCurrent)},
		{"absent files hold nothing", Stats{Present: Files(FileMemoryCurrent)}, 0},
	} {
		if got := tc.st.Zero(both); got != tc.want {
			t.Errorf("%s: Zero = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := (&Stats{Present: both}).Zero(Files(FileMemoryEvents)); got != Files(FileMemoryEvents) {
		t.Errorf("Zero of memory.events alone = %v", got)
	}

	st := Stats{Present: Files(FileCPUStat), SwapCurrent: Value{V: 7}, MemoryEvents: MemoryEvents{OOM: 2, OOMKill: 1}, CPU: CPUStat{UsageUsec: 9}}
	st.SetZero(both)
	want := Stats{Present: Files(FileCPUStat) | both, CPU: CPUStat{UsageUsec: 9}}
	if st.Present != want.Present || st.SwapCurrent != want.SwapCurrent || st.MemoryEvents != want.MemoryEvents || st.CPU != want.CPU {
		t.Errorf("SetZero: %+v, want %+v", st, want)
	}
}

// TestStatsZeroPressure: a pressure file holds zero when both its totals
// do; the root cgroup's cpu.pressure has a "full" line of zeros however
// much its tasks wait, so "full" alone tells nothing.
func TestStatsZeroPressure(t *testing.T) {
	t.Parallel()
	psi := Files(FileCPUPressure, FileMemoryPressure, FileIOPressure)
	for _, tc := range []struct {
		name string
		st   Stats
		want FileSet
	}{
		{"no stalls", Stats{Present: psi, CPUPressure: Pressure{HasFull: true}, MemoryPressure: Pressure{HasFull: true}, IOPressure: Pressure{HasFull: true}}, psi},
		{"cpu waits, nothing else", Stats{Present: psi, CPUPressure: Pressure{SomeTotal: 268473, FullTotal: 223080, HasFull: true}}, Files(FileMemoryPressure, FileIOPressure)},
		{"the root's cpu: some, no full", Stats{Present: psi, CPUPressure: Pressure{SomeTotal: 6947728142, HasFull: true}}, Files(FileMemoryPressure, FileIOPressure)},
		{"io stalled fully", Stats{Present: psi, IOPressure: Pressure{SomeTotal: 2536, FullTotal: 2536}}, Files(FileCPUPressure, FileMemoryPressure)},
		{"a full total alone is not zero", Stats{Present: psi, MemoryPressure: Pressure{FullTotal: 1}}, Files(FileCPUPressure, FileIOPressure)},
		{"absent files hold nothing", Stats{Present: Files(FileCPUPressure)}, Files(FileCPUPressure)},
	} {
		if got := tc.st.Zero(psi); got != tc.want {
			t.Errorf("%s: Zero = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := (&Stats{Present: psi}).Zero(Files(FileIOPressure)); got != Files(FileIOPressure) {
		t.Errorf("Zero of io.pressure alone = %v", got)
	}

	// SetZero clears the totals and keeps whether the file has a full
	// line (cpu.pressure before Linux 5.13 has none).
	st := Stats{Present: Files(FileCPUStat),
		CPUPressure:    Pressure{SomeTotal: 5, FullTotal: 0, HasFull: false},
		MemoryPressure: Pressure{SomeTotal: 7, FullTotal: 3, HasFull: true},
		IOPressure:     Pressure{SomeTotal: 9, FullTotal: 4, HasFull: true}}
	st.SetZero(Files(FileCPUPressure, FileMemoryPressure))
	if want := Files(FileCPUStat, FileCPUPressure, FileMemoryPressure); st.Present != want {
		t.Errorf("SetZero: Present %v, want %v", st.Present, want)
	}
	if st.CPUPressure != (Pressure{}) || st.MemoryPressure != (Pressure{HasFull: true}) {
		t.Errorf("SetZero: cpu %+v, memory %+v; want zero totals, full lines as before", st.CPUPressure, st.MemoryPressure)
	}
	if st.IOPressure != (Pressure{SomeTotal: 9, FullTotal: 4, HasFull: true}) {
		t.Errorf("SetZero changed io.pressure, not asked for: %+v", st.IOPressure)
	}
}

// TestHostSubtreeTotals reads this host's mounts and kernel release: the
// cgroup2 mount's memory.events counts its subtree unless its options say
// memory_localevents.
func TestHostSubtreeTotals(t *testing.T) {
	t.Parallel()
	mounts, err := procfs.GetMounts()
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	release := unix.ByteSliceToString(u.Release[:])
	found := false
	for _, m := range mounts {
		if m.FSType != "cgroup2" {
			continue
		}
		found = true
		_, local := m.SuperOptions["memory_localevents"]
		want := Files(FileMemorySwapCurrent, FileCPUPressure, FileMemoryPressure, FileIOPressure)
		if !local && kernelAtLeast(release, 5, 2) {
			want |= Files(FileMemoryEvents)
		}
		if got := hostSubtreeTotals(m.MountPoint); got != want {
			t.Errorf("cgroup2 at %s (options %v, Linux %s): %v, want %v", m.MountPoint, m.SuperOptions, release, got, want)
		}
	}
	if !found {
		t.Skip("no cgroup2 mount")
	}
}

// TestIntegrationHostPressure checks, on this host's cgroup v2 hierarchy
// (make integration: with the test cluster's pods on it), what
// SubtreeTotals assumes of the PSI files: where a parent's totals, read
// after its child's, are zero, so are the child's; and a cgroup's "full"
// total is never above its "some". (A child's totals may be above its
// parent's: the kernel weights each CPU's stall time by the group's own
// non-idle time there, docs/container-metrics.md.) It is a check of the
// kernel, and of timing, so it is not part of make test.
func TestIntegrationHostPressure(t *testing.T) {
	if os.Getenv("NODEAGENT_INTEGRATION") == "" {
		t.Skip("NODEAGENT_INTEGRATION is not set (make integration sets it)")
	}
	mounts, err := procfs.GetMounts()
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	root := ""
	for _, m := range mounts {
		if m.FSType == "cgroup2" {
			root = m.MountPoint
		}
	}
	if root == "" {
		t.Skip("no cgroup2 mount")
	}
	read := func(dir string, f File) (Pressure, bool) {
		b, err := os.ReadFile(filepath.Join(dir, f.String()))
		if err != nil {
			return Pressure{}, false // no PSI here, or the cgroup went away
		}
		var p Pressure
		if err := parsePressure(b, &p); err != nil {
			t.Errorf("%s/%s: %v", dir, f, err)
			return Pressure{}, false
		}
		return p, true
	}
	checked, zeroParents := 0, 0
	err = filepath.WalkDir(root, func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || dir == root {
			return nil
		}
		for _, f := range pressureFileList {
			child, ok := read(dir, f)
			if !ok {
				continue
			}
			parent, ok := read(filepath.Dir(dir), f)
			if !ok {
				continue
			}
			checked++
			if parent.SomeTotal == 0 && parent.FullTotal == 0 {
				zeroParents++
				if child.SomeTotal != 0 || child.FullTotal != 0 {
					t.Errorf("%s/%s: totals %d and %d below a parent at zero", dir, f, child.SomeTotal, child.FullTotal)
				}
			}
			if child.FullTotal > child.SomeTotal {
				t.Errorf("%s/%s: full total %d, above its some total %d", dir, f, child.FullTotal, child.SomeTotal)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked == 0 {
		t.Skipf("no cgroup below %s has PSI files", root)
	}
	t.Logf("%d pressure files checked against their parents' below %s, %d of them below a parent at zero", checked, root, zeroParents)
}
