package cgroup

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A hybrid host (systemd's "hybrid" mode) mounts cgroup v1 hierarchies
// beside a cgroup v2 one at /sys/fs/cgroup/unified. The controllers bound
// to v1 have no files in the v2 cgroups; each cgroup is accounted at the
// same path below every v1 hierarchy. The kubelet's cAdvisor reads v1
// there. nodeagent walks the v2 hierarchy as always (cgroup.procs, cpu.stat
// usage, PSI) and reads the files of the controllers bound to v1 from the
// v1 hierarchies, so that the same container_* families are served:
//
//	memory  memory_v1.go
//	cpu     cpu.shares        for cpu.weight      (container_spec_cpu_shares)
//	        cpu.cfs_quota_us  for cpu.max's quota (-1: no quota)
//	        cpu.cfs_period_us for cpu.max's period (FileCPUPeriodV1)
//	        cpu.stat          for cpu.stat's throttling lines (FileCPUStatV1)
//	pids    pids.current, pids.max: as in v2
//
// io is not read from v1 (blkio's files have another format and other
// counters): container_fs_* and container_blkio_device_usage_total stay
// absent on a hybrid host, as the docs say.

// v1Controller is a controller a hybrid host may bind to a v1 hierarchy.
type v1Controller uint8

const (
	v1None v1Controller = iota
	v1Memory
	v1CPU
	v1Pids
	numV1
)

// v1Hierarchies names each controller's hierarchy beside the v2 root (on
// Debian and most distributions "cpu" is a symlink to "cpu,cpuacct") and a
// file its root directory has, which tells a copy of one in a fixture tree
// (not a cgroup filesystem) from a stray directory.
var v1Hierarchies = [numV1]struct{ controller, rootFile string }{
	v1Memory: {"memory", "memory.usage_in_bytes"},
	v1CPU:    {"cpu", "cpu.shares"},
	v1Pids:   {"pids", "tasks"},
}

// v1Files are the v1 files read instead of the v2 ones on a hybrid host,
// by the hierarchy they are in; v1None for files v1 does not stand in for.
var v1Files = [numFiles]struct {
	ctrl v1Controller
	name string
}{
	FileMemoryCurrent: {v1Memory, "memory.usage_in_bytes"},
	FileMemoryStat:    {v1Memory, "memory.stat"},
	FileMemoryMax:     {v1Memory, "memory.limit_in_bytes"},
	FileMemoryPeak:    {v1Memory, "memory.max_usage_in_bytes"},
	FileMemoryMin:     {v1Memory, "memory.soft_limit_in_bytes"},
	FileMemorySwapMax: {v1Memory, "memory.memsw.limit_in_bytes"},
	FileCPUWeight:     {v1CPU, "cpu.shares"},
	FileCPUMax:        {v1CPU, "cpu.cfs_quota_us"},
	FileCPUPeriodV1:   {v1CPU, "cpu.cfs_period_us"},
	FileCPUStatV1:     {v1CPU, "cpu.stat"},
	FilePidsCurrent:   {v1Pids, "pids.current"},
	FilePidsMax:       {v1Pids, "pids.max"},
}

// findV1 returns the hierarchies of the controllers that the v2 root lacks
// and a v1 hierarchy beside it has; "" for the others. On a real host the
// v1 hierarchy is a cgroup (v1) filesystem; in copies and test fixtures, a
// directory with the controller's root file.
func findV1(root string) [numV1]string {
	var out [numV1]string
	for c := v1Controller(1); c < numV1; c++ {
		h := v1Hierarchies[c]
		if controllerAvailable(root, h.controller) {
			continue
		}
		dir := filepath.Join(filepath.Dir(root), h.controller)
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			continue
		}
		switch {
		case st.Type == unix.CGROUP_SUPER_MAGIC:
			out[c] = dir
		case st.Type == unix.CGROUP2_SUPER_MAGIC:
		default:
			if fi, err := os.Stat(filepath.Join(dir, h.rootFile)); err == nil && fi.Mode().IsRegular() {
				out[c] = dir
			}
		}
	}
	return out
}

// controllerAvailable says whether the v2 root lists controller in its
// cgroup.controllers.
func controllerAvailable(root, controller string) bool {
	b, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return false
	}
	for _, c := range strings.Fields(string(b)) {
		if c == controller {
			return true
		}
	}
	return false
}

// parseV1 parses the v1 stand-in of file f into s.
func (s *Stats) parseV1(f File, b []byte) error {
	switch f {
	case FileCPUWeight:
		// cpu.shares is served as it is: converting it to a weight and
		// back would not give the same number.
		var v Value
		if err := parseValue(b, false, &v); err != nil {
			return err
		}
		s.CPUWeight, s.CPUShares = Value{}, v.V
		return nil
	case FileCPUMax:
		return parseCFSQuota(b, &s.CPUMax)
	case FileCPUPeriodV1:
		var v Value
		if err := parseValue(b, false, &v); err != nil {
			return err
		}
		s.CPUMax.Period = v.V
		return nil
	case FileCPUStatV1:
		return parseCPUStatV1(b, &s.CPU)
	}
	return s.parseMemoryV1(f, b)
}
