package cadvisor

import (
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/cgroup"
)

// memoryFamilies are cAdvisor's memory usage families, from memory.current,
// memory.stat, memory.peak, memory.swap.current and memory.events.
func memoryFamilies() []containerFamily {
	stat := cgroup.FileMemoryStat
	// v2Stat is a family of a cgroup v2 memory.stat key, served where the
	// file has the key: not from v1's memory.stat on a hybrid host, nor
	// from a kernel that lacks the key, where cAdvisor serves 0.
	v2Stat := func(name, help string, typ dto.MetricType, key cgroup.MemoryStatKeys, value func(m *cgroup.MemoryStat) uint64) containerFamily {
		return containerFamily{name: name, help: help, typ: typ, files: cgroup.Files(stat),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				if s.stats.Present.Has(stat) && s.stats.Memory.V2Keys.Has(key) {
					b.add(s.labels.base, float64(value(&s.stats.Memory)))
				}
			}}
	}
	usageFiles := cgroup.Files(cgroup.FileMemoryCurrent, cgroup.FileMemoryStat)
	return []containerFamily{
		{name: "container_memory_usage_bytes", help: "Current memory usage in bytes, including all memory regardless of when it was accessed", typ: gauge, files: usageFiles,
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				if u, ok := memoryUsage(&s.stats); ok {
					b.add(s.labels.base, u)
				}
			}},
		{name: "container_memory_working_set_bytes", help: "Current working set in bytes.", typ: gauge, files: usageFiles,
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				u, ok := memoryUsage(&s.stats)
				if !ok || !s.stats.Present.Has(cgroup.FileMemoryStat) {
					return
				}
				b.add(s.labels.base, max(0, u-float64(s.stats.Memory.InactiveFile)))
			}},
		statFamily("container_memory_rss", "Size of RSS in bytes.", gauge, stat,
			func(st *cgroup.Stats) float64 { return float64(st.Memory.Anon) }),
		statFamily("container_memory_cache", "Number of bytes of page cache memory.", gauge, stat,
			func(st *cgroup.Stats) float64 { return float64(st.Memory.File) }),
		statFamily("container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, stat,
			func(st *cgroup.Stats) float64 { return float64(st.Memory.FileMapped) }),
		statFamily("container_memory_total_active_file_bytes", "Current total active file in bytes.", gauge, stat,
			func(st *cgroup.Stats) float64 { return float64(st.Memory.ActiveFile) }),
		statFamily("container_memory_total_inactive_file_bytes", "Current total inactive file in bytes.", gauge, stat,
			func(st *cgroup.Stats) float64 { return float64(st.Memory.InactiveFile) }),
		// A hybrid host's v1 memory hierarchy has no memory.swap.current:
		// its memory.stat's total_swap stands in, as cAdvisor reads it
		// there.
		{name: "container_memory_swap", help: "Container swap usage in bytes.", typ: gauge, files: cgroup.Files(cgroup.FileMemorySwapCurrent, stat),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				switch p := s.stats.Present; {
				case p.Has(cgroup.FileMemorySwapCurrent):
					b.add(s.labels.base, float64(s.stats.SwapCurrent.V))
				case p.Has(stat) && s.stats.Memory.HasSwapV1:
					b.add(s.labels.base, float64(s.stats.Memory.SwapV1))
				}
			}},
		statFamily("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", gauge, cgroup.FileMemoryPeak,
			func(st *cgroup.Stats) float64 { return float64(st.MemoryPeak.V) }),
		{name: "container_memory_failures_total", help: "Cumulative count of memory allocation failures.", typ: counter, files: cgroup.Files(stat),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				if !s.stats.Present.Has(stat) {
					return
				}
				// cgroup v2 counts faults hierarchically only; cAdvisor
				// serves the same number under both scopes.
				for t, v := range [2]uint64{s.stats.Memory.PgFault, s.stats.Memory.PgMajFault} {
					for sc := range 2 {
						b.add(s.labels.failures[t][sc], float64(v))
					}
				}
			}},
		statFamily("container_oom_events_total", "Count of out of memory events observed for the container", counter, cgroup.FileMemoryEvents,
			func(st *cgroup.Stats) float64 { return float64(st.MemoryEvents.OOMKill) }),
		statFamily("container_memory_events_high_total", "Cumulative count of memory.high throttle events for the container", counter, cgroup.FileMemoryEvents,
			func(st *cgroup.Stats) float64 { return float64(st.MemoryEvents.High) }),
		statFamily("container_memory_events_max_total", "Cumulative count of memory.max limit hit events for the container", counter, cgroup.FileMemoryEvents,
			func(st *cgroup.Stats) float64 { return float64(st.MemoryEvents.Max) }),
		v2Stat("container_memory_file_dirty_bytes", "Number of bytes of file cache that has been modified but not yet written back to disk.", gauge,
			cgroup.KeyFileDirty, func(m *cgroup.MemoryStat) uint64 { return m.FileDirty }),
		v2Stat("container_memory_file_writeback_bytes", "Number of bytes of file cache that is currently being written back to disk.", gauge,
			cgroup.KeyFileWriteback, func(m *cgroup.MemoryStat) uint64 { return m.FileWriteback }),
		v2Stat("container_memory_pgscan_total", "Cumulative number of pages scanned by the page reclaim algorithm.", counter,
			cgroup.KeyPgScan, func(m *cgroup.MemoryStat) uint64 { return m.PgScan }),
		v2Stat("container_memory_pgsteal_total", "Cumulative number of pages reclaimed by the page reclaim algorithm.", counter,
			cgroup.KeyPgSteal, func(m *cgroup.MemoryStat) uint64 { return m.PgSteal }),
		v2Stat("container_memory_workingset_refault_file_total", "Cumulative number of refaults of previously evicted file pages.", counter,
			cgroup.KeyWorkingsetRefaultFile, func(m *cgroup.MemoryStat) uint64 { return m.WorkingsetRefaultFile }),
		v2Stat("container_memory_workingset_refault_anon_total", "Cumulative number of refaults of previously evicted anonymous pages.", counter,
			cgroup.KeyWorkingsetRefaultAnon, func(m *cgroup.MemoryStat) uint64 { return m.WorkingsetRefaultAnon }),
	}
}

// memoryUsage is memory.current; the root cgroup has none, and its usage is
// anon + file from memory.stat.
func memoryUsage(st *cgroup.Stats) (float64, bool) {
	switch {
	case st.Present.Has(cgroup.FileMemoryCurrent):
		return float64(st.MemoryCurrent.V), true
	case st.Present.Has(cgroup.FileMemoryStat):
		return float64(st.Memory.Anon + st.Memory.File), true
	}
	return 0, false
}
