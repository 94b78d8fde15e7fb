package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrNotCgroup2 marks a root that is not a cgroup v2 hierarchy: a cgroup v1
// host, or a wrong path. The error text says which and what to do.
var ErrNotCgroup2 = errors.New("not a cgroup v2 hierarchy")

// FS is a cgroup v2 hierarchy mounted at a root directory.
type FS struct {
	root string
	// v1 are the v1 hierarchies beside a hybrid host's v2 root of the
	// controllers the v2 cgroups lack, read instead (hybrid.go); "" for
	// the others, and for all elsewhere; shared by the FS's Groups.
	v1 *[numV1]string
	// noV1 are the Files only v1 has (v1OnlyFiles) whose hierarchy this
	// host lacks: absent in every Group, without an open to find out.
	noV1 FileSet
	// subtreeTotals: see SubtreeTotals.
	subtreeTotals FileSet
}

// NewFS validates root as a cgroup v2 hierarchy: the cgroup2 filesystem
// (statfs magic), or, for copies and test fixtures on other filesystems, a
// directory with a cgroup.controllers file. The root of a hybrid host
// (v1 hierarchies and a cgroup2 "unified" one) gives its unified hierarchy,
// with memory, CPU limits and pids read from v1 (FS.V1). A cgroup v1-only
// layout is refused with ErrNotCgroup2.
func NewFS(root string) (FS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return FS{}, fmt.Errorf("cgroup root %s: %w", root, err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(abs, &st); err != nil {
		return FS{}, fmt.Errorf("cgroup root %s: %w", abs, &os.PathError{Op: "statfs", Path: abs, Err: err})
	}
	switch st.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		return newFS(abs), nil
	case unix.CGROUP_SUPER_MAGIC:
		return FS{}, fmt.Errorf("%s is a cgroup v1 hierarchy: %w; nodeagent reads cgroup v2 only", abs, ErrNotCgroup2)
	}
	// A hybrid host: its v2 hierarchy is the unified one below, and memory
	// is read from the v1 memory hierarchy beside that (memory_v1.go).
	if unified := filepath.Join(abs, "unified"); isCgroup2(unified) {
		return newFS(unified), nil
	}
	if hasV1Mounts(abs) {
		return FS{}, fmt.Errorf("%s holds cgroup v1 hierarchies: %w; nodeagent reads cgroup v2 only (boot with systemd.unified_cgroup_hierarchy=1)", abs, ErrNotCgroup2)
	}
	if fi, err := os.Stat(filepath.Join(abs, "cgroup.controllers")); err != nil || !fi.Mode().IsRegular() {
		return FS{}, fmt.Errorf("%s has no cgroup.controllers: %w", abs, ErrNotCgroup2)
	}
	return newFS(abs), nil
}

func newFS(root string) FS {
	v1 := findV1(root)
	fs := FS{root: root, v1: &v1}
	for f := File(0); f < numFiles; f++ {
		if v1OnlyFiles.Has(f) && v1[v1Files[f].ctrl] == "" {
			fs.noV1 |= 1 << f
		}
	}
	fs.subtreeTotals = hostSubtreeTotals(root)
	if v1[v1Memory] != "" {
		// A hybrid host's v2 hierarchy has no memory files to spare,
		// only its PSI files.
		fs.subtreeTotals &= pressureFiles
	}
	return fs
}

// Root is the hierarchy's absolute root directory.
func (fs FS) Root() string { return fs.root }

// MemoryV1 is the v1 memory hierarchy memory is read from on a hybrid
// host, or "" when the v2 hierarchy has the memory controller.
func (fs FS) MemoryV1() string { return fs.V1("memory") }

// V1 is the v1 hierarchy that controller ("memory", "cpu", "pids") is read
// from on a hybrid host, or "" when it is read from v2 (or not at all).
func (fs FS) V1(controller string) string {
	for c, h := range v1Hierarchies {
		if h.controller == controller && controller != "" && fs.v1 != nil {
			return fs.v1[c]
		}
	}
	return ""
}

// CPUFromV1 says whether CPU limits and throttling are read from a v1 cpu
// hierarchy (FileCPUPeriodV1, FileCPUStatV1).
func (fs FS) CPUFromV1() bool { return fs.V1("cpu") != "" }

func isCgroup2(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

func hasV1Mounts(root string) bool {
	entries, err := os.ReadDir(root)
	if err != nil {
		return false
	}
	for _, e := range entries {
		var st unix.Statfs_t
		if e.IsDir() && unix.Statfs(filepath.Join(root, e.Name()), &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
			return true
		}
	}
	return false
}
