package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrNotCgroup2 marks a root that is not a cgroup v2 hierarchy: a cgroup v1
// or hybrid host, or a wrong path. The error text says which and what to do.
var ErrNotCgroup2 = errors.New("not a cgroup v2 hierarchy")

// FS is a cgroup v2 hierarchy mounted at a root directory.
type FS struct {
	root string
}

// NewFS validates root as a cgroup v2 hierarchy: the cgroup2 filesystem
// (statfs magic), or, for copies and test fixtures on other filesystems, a
// directory with a cgroup.controllers file. A cgroup v1 or hybrid layout is
// refused with ErrNotCgroup2 and, on a hybrid host, the path of its unified
// hierarchy.
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
		return FS{root: abs}, nil
	case unix.CGROUP_SUPER_MAGIC:
		return FS{}, fmt.Errorf("%s is a cgroup v1 hierarchy: %w; nodeagent reads cgroup v2 only", abs, ErrNotCgroup2)
	}
	if unified := filepath.Join(abs, "unified"); isCgroup2(unified) {
		return FS{}, fmt.Errorf("%s is a hybrid cgroup v1/v2 layout: %w; nodeagent reads cgroup v2 only: point it at the unified hierarchy %s (where only the controllers not bound to v1 have files)", abs, ErrNotCgroup2, unified)
	}
	if hasV1Mounts(abs) {
		return FS{}, fmt.Errorf("%s holds cgroup v1 hierarchies: %w; nodeagent reads cgroup v2 only (boot with systemd.unified_cgroup_hierarchy=1)", abs, ErrNotCgroup2)
	}
	if fi, err := os.Stat(filepath.Join(abs, "cgroup.controllers")); err != nil || !fi.Mode().IsRegular() {
		return FS{}, fmt.Errorf("%s has no cgroup.controllers: %w", abs, ErrNotCgroup2)
	}
	return FS{root: abs}, nil
}

// Root is the hierarchy's absolute root directory.
func (fs FS) Root() string { return fs.root }

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
