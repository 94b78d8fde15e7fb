package cgroup

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// On a hybrid host (cgroup v1 controllers beside a cgroup v2 hierarchy at
// /sys/fs/cgroup/unified, as systemd's "hybrid" mode mounts them) the
// memory controller is bound to v1: the v2 cgroups have no memory.* files,
// and a cgroup's memory is accounted in the same path below the v1 memory
// hierarchy (/sys/fs/cgroup/memory). The kubelet's cAdvisor reads v1
// there; nodeagent reads its memory files in that case, and everything
// else (cgroup.procs, cpu.stat, PSI, io.stat) from v2 as always, so that
// container_memory_* and the working set that kubernetes-mixin's rules
// need are served on such hosts too.
//
// The v1 files and what they stand in for:
//
//	memory.usage_in_bytes      memory.current
//	memory.stat (total_*)      memory.stat
//	memory.limit_in_bytes      memory.max   (no limit: 9223372036854771712)
//	memory.max_usage_in_bytes  memory.peak
//	memory.soft_limit_in_bytes memory.min   (cAdvisor's reservation on v1)
//
// v1's hierarchical memory.stat keys (total_rss, total_cache, ...) are the
// ones cAdvisor serves on v1, and they match v2's hierarchical counts.
// Swap, memory.events and the memory PSI file have no v1 stand-in here:
// those series are absent, as they are where a v2 cgroup lacks the files.

// v1MemoryNames are the v1 files read instead of the v2 ones.
var v1MemoryNames = map[File]string{
	FileMemoryCurrent: "memory.usage_in_bytes",
	FileMemoryStat:    "memory.stat",
	FileMemoryMax:     "memory.limit_in_bytes",
	FileMemoryPeak:    "memory.max_usage_in_bytes",
	FileMemoryMin:     "memory.soft_limit_in_bytes",
}

// v1Memory says whether f is read from the v1 memory hierarchy when there
// is one.
func v1Memory(f File) bool {
	_, ok := v1MemoryNames[f]
	return ok
}

// v1Unlimited is the value a v1 limit holds when none is set: the
// kernel's PAGE_COUNTER_MAX pages, rounded to the page. Anything this large
// means no limit.
const v1Unlimited = 1 << 62

// findMemoryV1 returns the v1 memory hierarchy that stands beside a v2
// root whose cgroups have no memory controller, or "". On a real host the
// v1 hierarchy is a cgroup (v1) filesystem; in copies and test fixtures, a
// directory with a memory.usage_in_bytes file.
func findMemoryV1(root string) string {
	if controllerAvailable(root, "memory") {
		return ""
	}
	v1 := filepath.Join(filepath.Dir(root), "memory")
	var st unix.Statfs_t
	if err := unix.Statfs(v1, &st); err != nil {
		return ""
	}
	if st.Type == unix.CGROUP_SUPER_MAGIC {
		return v1
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return ""
	}
	if fi, err := os.Stat(filepath.Join(v1, "memory.usage_in_bytes")); err == nil && fi.Mode().IsRegular() {
		return v1
	}
	return ""
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
	case FileMemoryStat:
		return parseMemoryStatV1(b, &s.Memory)
	case FileMemoryMax, FileMemoryMin:
		dst := &s.MemoryMax
		if f == FileMemoryMin {
			dst = &s.MemoryMin
		}
		if err := parseValue(b, false, dst); err != nil {
			return err
		}
		if dst.V >= v1Unlimited {
			*dst = Value{Max: true}
		}
		return nil
	}
	return s.parse(f, b)
}

// parseMemoryStatV1 reads the hierarchical (total_*) keys of a v1
// memory.stat:
//
//	cache 4096
//	rss 1019904
//	...
//	total_cache 18194432
//	total_rss 1269760
//	total_mapped_file 4096
//	total_pgfault 4521
//	total_pgmajfault 0
//	total_inactive_file 16384000
//	total_active_file 1810432
func parseMemoryStatV1(b []byte, out *MemoryStat) error {
	*out = MemoryStat{}
	return parseKeyed(b, func(k []byte, v uint64) {
		key, ok := bytes.CutPrefix(k, []byte("total_"))
		if !ok {
			return
		}
		name := string(key)
		if v2, ok := v1MemoryStatKeys[name]; ok {
			name = v2
		}
		out.set(name, v, false)
	})
}

// v1MemoryStatKeys are v1's memory.stat keys whose v2 names differ.
var v1MemoryStatKeys = map[string]string{"rss": "anon", "cache": "file", "mapped_file": "file_mapped"}
