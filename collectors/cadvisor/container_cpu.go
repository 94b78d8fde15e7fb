package cadvisor

import "github.com/nodeagent/nodeagent/cgroup"

// cpuFamilies are cAdvisor's CPU usage and CFS throttling counters, from
// cpu.stat. The throttling counters exist only for cgroups with a CPU
// quota in cpu.max, as cAdvisor serves them. On a hybrid host they come
// from the v1 cpu hierarchy's cpu.stat (FileCPUStatV1), the usage from
// v2's.
func cpuFamilies() []containerFamily {
	throttling := cgroup.Files(cgroup.FileCPUStat, cgroup.FileCPUMax, cgroup.FileCPUStatV1)
	throttled := func(name, help string, value func(st *cgroup.CPUStat) float64) containerFamily {
		return containerFamily{name: name, help: help, typ: counter, files: throttling,
			emit: func(b *seriesBuf, s *cgState, env *buildEnv) {
				p := s.stats.Present
				if p.Has(cgroup.FileCPUStat) && p.Has(cgroup.FileCPUMax) && s.stats.CPUMax.HasQuota &&
					(!env.cpuV1 || p.Has(cgroup.FileCPUStatV1)) {
					b.add(s.labels.base, value(&s.stats.CPU))
				}
			}}
	}
	return []containerFamily{
		{name: "container_cpu_usage_seconds_total", help: "Cumulative cpu time consumed in seconds.", typ: counter, files: cgroup.Files(cgroup.FileCPUStat),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				if s.stats.Present.Has(cgroup.FileCPUStat) {
					b.add(s.labels.cpu, usec(s.stats.CPU.UsageUsec))
				}
			}},
		statFamily("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, cgroup.FileCPUStat,
			func(st *cgroup.Stats) float64 { return usec(st.CPU.UserUsec) }),
		statFamily("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, cgroup.FileCPUStat,
			func(st *cgroup.Stats) float64 { return usec(st.CPU.SystemUsec) }),
		throttled("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.",
			func(c *cgroup.CPUStat) float64 { return float64(c.NrPeriods) }),
		throttled("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.",
			func(c *cgroup.CPUStat) float64 { return float64(c.NrThrottled) }),
		throttled("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.",
			func(c *cgroup.CPUStat) float64 { return c.ThrottledSeconds() }),
		// cpu.max's burst allowance (cpu.max.burst) is 0 unless set, so
		// these read 0 for most containers; a kernel before 5.14 has no
		// burst lines and they read 0 too, as cAdvisor serves them.
		throttled("container_cpu_cfs_burst_periods_total", "Number of periods when burst occurs.",
			func(c *cgroup.CPUStat) float64 { return float64(c.NrBursts) }),
		throttled("container_cpu_cfs_burst_seconds_total", "Total time duration the container has been bursted.",
			func(c *cgroup.CPUStat) float64 { return c.BurstSeconds() }),
	}
}
