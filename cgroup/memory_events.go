package cgroup

// A memory.events file (hierarchical counts: a cgroup's numbers include
// its descendants'):
//
//	low 0
//	high 0
//	max 3
//	oom 1
//	oom_kill 1
//	oom_group_kill 0

// MemoryEvents holds memory.events counters: High counts the times the
// cgroup's usage went over memory.high and was throttled, Max the times it
// reached memory.max.
type MemoryEvents struct {
	High, Max    uint64
	OOM, OOMKill uint64
}

func parseMemoryEvents(b []byte, out *MemoryEvents) error {
	*out = MemoryEvents{}
	return parseKeyed(b, func(k []byte, v uint64) {
		switch string(k) {
		case "high":
			out.High = v
		case "max":
			out.Max = v
		case "oom":
			out.OOM = v
		case "oom_kill":
			out.OOMKill = v
		}
	})
}
