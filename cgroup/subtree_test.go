package cgroup

import (
	"errors"
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
	swap, both := Files(FileMemorySwapCurrent), Files(FileMemorySwapCurrent, FileMemoryEvents)
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
		want := Files(FileMemorySwapCurrent)
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
