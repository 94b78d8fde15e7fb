package cadvisor

import "github.com/nodeagent/nodeagent/cgroup"

// pressureFamilies are the PSI totals of cpu.pressure, memory.pressure and
// io.pressure: "stalled" is the full line (no task could run), "waiting"
// the some line (at least one task waited), in seconds.
func pressureFamilies() []containerFamily {
	fam := func(name, help string, file cgroup.File, full bool) containerFamily {
		return containerFamily{name: name, help: help, typ: counter, files: cgroup.Files(file),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				if !s.stats.Present.Has(file) {
					return
				}
				p := s.stats.Pressure(file)
				switch {
				case !full:
					b.add(s.labels.base, usec(p.SomeTotal))
				case p.HasFull:
					b.add(s.labels.base, usec(p.FullTotal))
				}
			}}
	}
	return []containerFamily{
		fam("container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", cgroup.FileCPUPressure, true),
		fam("container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", cgroup.FileCPUPressure, false),
		fam("container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", cgroup.FileMemoryPressure, true),
		fam("container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", cgroup.FileMemoryPressure, false),
		fam("container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", cgroup.FileIOPressure, true),
		fam("container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", cgroup.FileIOPressure, false),
	}
}
