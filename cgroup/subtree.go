package cgroup

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// SubtreeTotals are the files whose values count a cgroup and all its
// descendants, so that where one reads zero it reads zero in every
// descendant too, and a reader may serve the descendants' zeros without
// reading them:
//
//   - memory.swap.current: the swap page counter is charged to a cgroup and
//     each of its ancestors (always, on cgroup v2).
//   - memory.events: since Linux 5.2 each event is counted in the cgroup
//     and every ancestor below the root, unless the hierarchy is mounted
//     with memory_localevents (then memory.events is memory.events.local).
//     The counts only grow: a removed child's events stay in its parent.
//   - cpu.pressure, memory.pressure and io.pressure: a task's stall is
//     accounted in its cgroup and in every ancestor up to the root's
//     system-wide group ("some": a task of the subtree stalled; a "full"
//     stall is also a "some" stall of the same cgroup), so where a
//     cgroup's totals are zero no task below it has stalled on that
//     resource. Not to the microsecond: the kernel folds each CPU's stall
//     time into a group's total weighted by the group's non-idle time on
//     that CPU in whole jiffies, so a child's total may be above its
//     parent's, and a parent whose fold saw under a jiffy of non-idle
//     time on a CPU drops a stall its child may keep
//     (docs/container-metrics.md). A cgroup whose PSI is turned off in
//     cgroup.pressure hides these files: nothing is inherited from it.
//
// On most nodes no container swaps, few are ever OOM-killed and many
// pods never wait for memory or IO, and these are five of the dozen
// files a scrape reads per cgroup. The PSI files are cgroup core files,
// present with or without the memory controller.
func (fs FS) SubtreeTotals() FileSet { return fs.subtreeTotals }

// pressureFiles are the PSI files, which always count their subtree.
const pressureFiles = FileSet(1<<FileCPUPressure | 1<<FileMemoryPressure | 1<<FileIOPressure)

// subtreeTotals is SubtreeTotals for the hierarchy at root, given the
// mounts (of the reader's mount namespace) and the kernel's release.
// Mounts that cannot be read leave memory.events out: its semantics then
// cannot be known.
func subtreeTotals(root string, mounts []*procfs.MountInfo, mountsErr error, release string) FileSet {
	totals := Files(FileMemorySwapCurrent) | pressureFiles
	if mountsErr != nil || !kernelAtLeast(release, 5, 2) {
		return totals
	}
	if m := mountOf(root, mounts); m == nil || m.FSType != "cgroup2" {
		// A copy or a test fixture on another filesystem: it stands for a
		// hierarchy mounted with the kernel's defaults.
		return totals | Files(FileMemoryEvents)
	} else if _, local := m.SuperOptions["memory_localevents"]; local {
		return totals
	}
	return totals | Files(FileMemoryEvents)
}

// mountOf returns the mount that holds path: the one with the longest
// mount point at or above it (the last one mounted there, if several).
func mountOf(path string, mounts []*procfs.MountInfo) *procfs.MountInfo {
	var best *procfs.MountInfo
	for _, m := range mounts {
		mp := filepath.Clean(m.MountPoint)
		if mp != path && mp != "/" && !strings.HasPrefix(path, mp+"/") {
			continue
		}
		if best == nil || len(mp) >= len(filepath.Clean(best.MountPoint)) {
			best = m
		}
	}
	return best
}

// kernelAtLeast says whether release (uname -r: "6.1.0-28-amd64") is at
// least major.minor; an unreadable release is not.
func kernelAtLeast(release string, major, minor int) bool {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return false
	}
	digits := parts[1] // "2", or "2-rc1" when there is no patch level
	if i := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		digits = digits[:i]
	}
	maj, err1 := strconv.Atoi(parts[0])
	mnr, err2 := strconv.Atoi(digits)
	if err1 != nil || err2 != nil {
		return false
	}
	return maj > major || (maj == major && mnr >= minor)
}

// hostSubtreeTotals is subtreeTotals for root on this host.
func hostSubtreeTotals(root string) FileSet {
	var u unix.Utsname
	release := ""
	if err := unix.Uname(&u); err == nil {
		release = unix.ByteSliceToString(u.Release[:])
	}
	mounts, err := procfs.GetMounts()
	if resolved, rerr := filepath.EvalSymlinks(root); rerr == nil {
		root = resolved
	}
	return subtreeTotals(root, mounts, err, release)
}

// Zero returns those of files that hold zero in s: present, and zero in
// every field Stats has of them. Only SubtreeTotals files are considered.
func (s *Stats) Zero(files FileSet) FileSet {
	var zero FileSet
	if files.Has(FileMemorySwapCurrent) && s.Present.Has(FileMemorySwapCurrent) && s.SwapCurrent == (Value{}) {
		zero |= Files(FileMemorySwapCurrent)
	}
	if files.Has(FileMemoryEvents) && s.Present.Has(FileMemoryEvents) && s.MemoryEvents == (MemoryEvents{}) {
		zero |= Files(FileMemoryEvents)
	}
	for _, f := range pressureFileList {
		if p := s.Pressure(f); files.Has(f) && s.Present.Has(f) && p.SomeTotal == 0 && p.FullTotal == 0 {
			zero |= 1 << f
		}
	}
	return zero
}

// SetZero records files as read and zero, as Zero finds them: for the
// SubtreeTotals files of a cgroup whose ancestor holds zero in them. A
// pressure file keeps whether it has a "full" line, as last read.
func (s *Stats) SetZero(files FileSet) {
	if files.Has(FileMemorySwapCurrent) {
		s.SwapCurrent = Value{}
	}
	if files.Has(FileMemoryEvents) {
		s.MemoryEvents = MemoryEvents{}
	}
	for _, f := range pressureFileList {
		if files.Has(f) {
			p := s.Pressure(f)
			p.SomeTotal, p.FullTotal = 0, 0
		}
	}
	s.Present |= files & (Files(FileMemorySwapCurrent, FileMemoryEvents) | pressureFiles)
}
