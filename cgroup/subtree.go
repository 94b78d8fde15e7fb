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
//
// On most nodes no container swaps and few are ever OOM-killed, and these
// are two of the dozen files a scrape reads per cgroup.
func (fs FS) SubtreeTotals() FileSet { return fs.subtreeTotals }

// subtreeTotals is SubtreeTotals for the hierarchy at root, given the
// mounts (of the reader's mount namespace) and the kernel's release.
// Mounts that cannot be read leave memory.events out: its semantics then
// cannot be known.
func subtreeTotals(root string, mounts []*procfs.MountInfo, mountsErr error, release string) FileSet {
	totals := Files(FileMemorySwapCurrent)
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
	return zero
}

// SetZero records files as read and zero, as Zero finds them: for the
// SubtreeTotals files of a cgroup whose ancestor holds zero in them.
func (s *Stats) SetZero(files FileSet) {
	if files.Has(FileMemorySwapCurrent) {
		s.SwapCurrent = Value{}
		s.Present |= Files(FileMemorySwapCurrent)
	}
	if files.Has(FileMemoryEvents) {
		s.MemoryEvents = MemoryEvents{}
		s.Present |= Files(FileMemoryEvents)
	}
}
