package cadvisor

import "github.com/nodeagent/nodeagent/cgroup"

// specFamilies are cAdvisor's container_spec_* gauges: the limits and
// weights set on the cgroup, from cpu.max, cpu.weight, memory.max,
// memory.min and memory.swap.max (on a hybrid host their v1 stand-ins).
// The root cgroup has no limit files; cAdvisor gives it the machine's
// memory and swap as limits.
func specFamilies() []containerFamily {
	machineOr := func(s *cgState, machine float64, file cgroup.File, v cgroup.Value) (float64, bool) {
		if s.entry.Kind == cgroup.KindRoot {
			return machine, machine >= 0
		}
		return limit(v), s.stats.Present.Has(file)
	}
	return []containerFamily{
		// On a hybrid host the period is v1's cpu.cfs_period_us, read
		// with the quota (cpu.cfs_quota_us).
		{name: "container_spec_cpu_period", help: "CPU period of the container.", typ: gauge, files: cgroup.Files(cgroup.FileCPUMax, cgroup.FileCPUPeriodV1),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				if s.stats.Present.Has(cgroup.FileCPUMax) && s.stats.CPUMax.Period != 0 {
					b.add(s.labels.base, float64(s.stats.CPUMax.Period))
				}
			}},
		{name: "container_spec_cpu_quota", help: "CPU quota of the container.", typ: gauge, files: cgroup.Files(cgroup.FileCPUMax),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				if s.stats.Present.Has(cgroup.FileCPUMax) && s.stats.CPUMax.HasQuota {
					b.add(s.labels.base, float64(s.stats.CPUMax.Quota))
				}
			}},
		statFamily("container_spec_cpu_shares", "CPU share of the container.", gauge, cgroup.FileCPUWeight,
			func(st *cgroup.Stats) float64 {
				if st.CPUShares != 0 { // a hybrid host's v1 cpu.shares
					return float64(st.CPUShares)
				}
				return float64(weightToShares(st.CPUWeight.V))
			}),
		{name: "container_spec_memory_limit_bytes", help: "Memory limit for the container.", typ: gauge, files: cgroup.Files(cgroup.FileMemoryMax),
			emit: func(b *seriesBuf, s *cgState, env *buildEnv) {
				if v, ok := machineOr(s, env.memTotal, cgroup.FileMemoryMax, s.stats.MemoryMax); ok {
					b.add(s.labels.base, v)
				}
			}},
		{name: "container_spec_memory_reservation_limit_bytes", help: "Memory reservation limit for the container.", typ: gauge, files: cgroup.Files(cgroup.FileMemoryMin),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				if s.stats.Present.Has(cgroup.FileMemoryMin) {
					b.add(s.labels.base, limit(s.stats.MemoryMin))
				} else if s.entry.Kind == cgroup.KindRoot {
					b.add(s.labels.base, 0) // cAdvisor's root has a memory spec without a reservation
				}
			}},
		{name: "container_spec_memory_swap_limit_bytes", help: "Memory swap limit for the container.", typ: gauge, files: cgroup.Files(cgroup.FileMemorySwapMax),
			emit: func(b *seriesBuf, s *cgState, env *buildEnv) {
				if v, ok := machineOr(s, env.swapTotal, cgroup.FileMemorySwapMax, s.stats.SwapMax); ok {
					b.add(s.labels.base, v)
				}
			}},
	}
}

// weightToShares converts cpu.weight (1-10000) to the cgroup v1 shares
// cAdvisor reports (2-262144), inverting the kubelet's shares → weight
// mapping: shares = 2 + ((weight-1) * 262142) / 9999.
func weightToShares(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	return 2 + ((w-1)*262142)/9999
}
