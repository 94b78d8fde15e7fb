package cgroup

import "bytes"

// On a hybrid host (cgroup v1 controllers beside a cgroup v2 hierarchy at
// /sys/fs/cgroup/unified, as systemd's "hybrid" mode mounts them) the
// memory controller is bound to v1: the v2 cgroups have no memory.* files,
// and a cgroup's memory is accounted in the same path below the v1 memory
// hierarchy (/sys/fs/cgroup/memory). The kubelet's cAdvisor reads v1
// there; nodeagent reads its memory files in that case (hybrid.go), so
// that container_memory_* and the working set that kubernetes-mixin's
// rules need are served on such hosts too.
//
// The v1 files and what they stand in for:
//
//	memory.usage_in_bytes      memory.current
//	memory.stat (total_*)      memory.stat
//	memory.limit_in_bytes      memory.max   (no limit: 9223372036854771712)
//	memory.max_usage_in_bytes  memory.peak
//	memory.soft_limit_in_bytes memory.min   (cAdvisor's reservation on v1)
//	memory.memsw.limit_in_bytes memory.swap.max (memory and swap on v1, as
//	                           cAdvisor serves it there; with swap accounting)
//	memory.stat total_swap     memory.swap.current (MemoryStat.SwapV1)
//
// v1's hierarchical memory.stat keys (total_rss, total_cache, ...) are the
// ones cAdvisor serves on v1, and they match v2's hierarchical counts.
// memory.events and the memory PSI file have no v1 stand-in here: those
// series are absent, as they are where a v2 cgroup lacks the files.

// v1Unlimited is the value a v1 limit holds when none is set: the
// kernel's PAGE_COUNTER_MAX pages, rounded to the page. Anything this large
// means no limit.
const v1Unlimited = 1 << 62

// parseMemoryV1 parses the v1 memory hierarchy's stand-in of file f into
// s.
func (s *Stats) parseMemoryV1(f File, b []byte) error {
	switch f {
	case FileMemoryStat:
		return parseMemoryStatV1(b, &s.Memory)
	case FileMemoryMax, FileMemoryMin, FileMemorySwapMax:
		dst := &s.MemoryMax
		switch f {
		case FileMemoryMin:
			dst = &s.MemoryMin
		case FileMemorySwapMax:
			dst = &s.SwapMax
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
		if name == "swap" {
			out.SwapV1, out.HasSwapV1 = v, true
			return
		}
		if v2, ok := v1MemoryStatKeys[name]; ok {
			name = v2
		}
		out.set(name, v, false)
	})
}

// v1MemoryStatKeys are v1's memory.stat keys whose v2 names differ.
var v1MemoryStatKeys = map[string]string{"rss": "anon", "cache": "file", "mapped_file": "file_mapped"}
