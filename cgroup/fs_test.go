package cgroup

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestNewFS(t *testing.T) {
	t.Parallel()
	if _, err := NewFS(mkTree(t)); err != nil {
		t.Errorf("fixture with cgroup.controllers: %v", err)
	}
	if _, err := NewFS(t.TempDir()); !errors.Is(err, ErrNotCgroup2) {
		t.Errorf("empty directory: err = %v, want ErrNotCgroup2", err)
	}
	if _, err := NewFS("/nonexistent/cgroup"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing directory: err = %v", err)
	}
}

// TestNewFSHost checks the detection on this machine's real mounts: the
// hybrid layout (a tmpfs with v1 hierarchies and a cgroup2 "unified", read
// as the unified hierarchy with memory from v1), a v1 hierarchy, and the
// cgroup2 mount itself.
func TestNewFSHost(t *testing.T) {
	t.Parallel()
	if isCgroup2("/sys/fs/cgroup") {
		if _, err := NewFS("/sys/fs/cgroup"); err != nil {
			t.Errorf("unified host: %v", err)
		}
		return
	}
	if !isCgroup2("/sys/fs/cgroup/unified") {
		t.Skip("neither a cgroup v2 nor a hybrid host")
	}
	fs, err := NewFS("/sys/fs/cgroup")
	if err != nil || fs.Root() != "/sys/fs/cgroup/unified" || fs.MemoryV1() != "/sys/fs/cgroup/memory" {
		t.Errorf("hybrid root: %+v, %v; want the unified hierarchy with memory from /sys/fs/cgroup/memory", fs, err)
	}
	if _, err := NewFS("/sys/fs/cgroup/unified"); err != nil {
		t.Errorf("unified mount: %v", err)
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu"); err == nil {
		if _, err := NewFS("/sys/fs/cgroup/cpu"); !errors.Is(err, ErrNotCgroup2) || !strings.Contains(err.Error(), "v1") {
			t.Errorf("v1 hierarchy: err = %v", err)
		}
	}
}
