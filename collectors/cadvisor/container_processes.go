package cadvisor

import "github.com/nodeagent/nodeagent/cgroup"

// processFamilies are cAdvisor's task counts (pids.current, pids.max,
// cgroup.procs) and the cgroup's lifetime: its creation time and the
// collection time.
func processFamilies() []containerFamily {
	return []containerFamily{
		statFamily("container_threads", "Number of threads running inside the container", gauge, cgroup.FilePidsCurrent,
			func(st *cgroup.Stats) float64 { return float64(st.PidsCurrent.V) }),
		statFamily("container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero", gauge, cgroup.FilePidsMax,
			func(st *cgroup.Stats) float64 { return limit(st.PidsMax) }),
		statFamily("container_processes", "Number of processes running inside the container.", gauge, cgroup.FileCgroupProcs,
			func(st *cgroup.Stats) float64 { return float64(st.Procs.Count) }),
		// cAdvisor (from the kubelet 1.37's) serves a cgroup's creation
		// time under both names; a container runtime's own start time
		// would differ only for its handlers, which the kubelet's does
		// not use.
		createdAt("container_creation_time_seconds", "Container creation time since unix epoch in seconds."),
		createdAt("container_start_time_seconds", "Start time of the container since unix epoch in seconds."),
		{name: "container_last_seen", help: "Last time a container was seen by the exporter", typ: gauge,
			emit: func(b *seriesBuf, s *cgState, env *buildEnv) {
				b.add(s.labels.base, env.now)
			}},
	}
}

// createdAt is a family of the cgroup's creation time.
func createdAt(name, help string) containerFamily {
	return containerFamily{name: name, help: help, typ: gauge,
		emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
			if !s.createdAt.IsZero() {
				b.add(s.labels.base, float64(s.createdAt.Unix()))
			}
		}}
}
