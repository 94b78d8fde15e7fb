package main

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/cgroup"
)

// quotaGOMAXPROCS sets GOMAXPROCS to the CPUs the CPU quota of the
// agent's own cgroup grants, rounded down, at least 1 and at most Go's
// own choice, and returns it; 0 when there is no quota or it changes
// nothing. Go rounds a quota up, to at least 2: under the DaemonSet's
// 500m limit or the unit's CPUQuota=50 %, two threads reading cgroups at
// once spend the quota ~10 % faster for the same work, and the scrape
// ends later (docs/performance.md). It runs before the collectors are
// built, as the cadvisor collector reads on a goroutine per thread.
func quotaGOMAXPROCS(self procfs.Proc) (int, error) {
	cpus, ok, err := cpuQuota(self, "/")
	if err != nil || !ok {
		return 0, err
	}
	before := runtime.GOMAXPROCS(0)
	n := max(1, min(int(math.Floor(cpus)), before))
	if n == before {
		return 0, nil
	}
	runtime.GOMAXPROCS(n)
	return n, nil
}

// cpuQuota returns the CPUs that the CFS quota of proc's cgroup grants:
// the smallest quota/period of the cgroup and of its ancestors as far as
// its mount shows them, from cpu.max under cgroup v2 or cpu.cfs_quota_us
// and cpu.cfs_period_us under v1's cpu controller; ok is false without a
// quota, or where no cgroup filesystem shows the cgroup. root prefixes
// the mount points (a fixture's directory in tests, "/" otherwise).
//
// A node agent's container sees several mounts of its hierarchy: its own
// /sys/fs/cgroup and the host's, through a host root mounted for the
// node collectors (/host/root), whose paths may cross directories it may
// not enter. The mount at /sys/fs/cgroup, the process' own, is taken
// before the others. (go.uber.org/automaxprocs takes the last one listed:
// in the DaemonSet on the test cluster that was a path through
// containerd's state directory, which the agent may not enter.)
func cpuQuota(proc procfs.Proc, root string) (cpus float64, ok bool, err error) {
	groups, err := proc.Cgroups()
	if err != nil {
		return 0, false, fmt.Errorf("the process' cgroups: %w", err)
	}
	mounts, err := proc.MountInfo()
	if err != nil {
		return 0, false, fmt.Errorf("the process' mounts: %w", err)
	}
	// The cpu controller's hierarchy: v1's when it has one (a hybrid
	// host binds cpu to v1), else the unified one.
	v1 := slices.IndexFunc(groups, func(g procfs.Cgroup) bool { return slices.Contains(g.Controllers, "cpu") })
	var cgPath string
	var isMount func(*procfs.MountInfo) bool
	switch v2 := slices.IndexFunc(groups, func(g procfs.Cgroup) bool { return g.HierarchyID == 0 }); {
	case v1 >= 0:
		cgPath = groups[v1].Path
		isMount = func(m *procfs.MountInfo) bool {
			_, cpu := m.SuperOptions["cpu"]
			return m.FSType == "cgroup" && cpu
		}
	case v2 >= 0:
		cgPath = groups[v2].Path
		isMount = func(m *procfs.MountInfo) bool { return m.FSType == "cgroup2" }
	default:
		return 0, false, nil
	}
	var mount *procfs.MountInfo
	for _, m := range mounts {
		if !isMount(m) || !within(cgPath, m.Root) {
			continue
		}
		if mount == nil || underSysFsCgroup(m.MountPoint) && !underSysFsCgroup(mount.MountPoint) {
			mount = m
		}
	}
	if mount == nil {
		return 0, false, nil
	}
	top := filepath.Join(root, mount.MountPoint)
	dir := filepath.Join(top, strings.TrimPrefix(cgPath, mount.Root))
	for {
		c, has, err := dirQuota(dir, v1 >= 0)
		if err != nil {
			return 0, false, err
		}
		if has && (!ok || c < cpus) {
			cpus, ok = c, true
		}
		if len(dir) <= len(top) { // the mount's root: the walk's end
			return cpus, ok, nil
		}
		dir = filepath.Dir(dir)
	}
}

// dirQuota reads one cgroup directory's quota in CPUs; has is false for
// none, or where the files are absent (the root cgroup has none).
func dirQuota(dir string, v1 bool) (cpus float64, has bool, err error) {
	if !v1 {
		b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		m, err := cgroup.ParseCPUMax(b)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %w", filepath.Join(dir, "cpu.max"), err)
		}
		if !m.HasQuota || m.Period == 0 {
			return 0, false, nil
		}
		return float64(m.Quota) / float64(m.Period), true, nil
	}
	var v [2]int64
	for i, f := range []string{"cpu.cfs_quota_us", "cpu.cfs_period_us"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			return 0, false, nil
		}
		if err != nil {
			return 0, false, err
		}
		if v[i], err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err != nil {
			return 0, false, fmt.Errorf("%s: %w", filepath.Join(dir, f), err)
		}
	}
	if v[0] <= 0 || v[1] <= 0 { // -1: no quota
		return 0, false, nil
	}
	return float64(v[0]) / float64(v[1]), true, nil
}

// within says whether the cgroup p is the mount root r or below it.
func within(p, r string) bool {
	return r == "/" || p == r || strings.HasPrefix(p, r+"/")
}

func underSysFsCgroup(mountPoint string) bool {
	return mountPoint == "/sys/fs/cgroup" || path.Dir(mountPoint) == "/sys/fs/cgroup"
}
