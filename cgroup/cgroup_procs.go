package cgroup

// A cgroup.procs file lists the PIDs of the processes directly in the
// cgroup (not its descendants), one per line, unsorted:
//
//	1874
//	1901

// Procs summarises cgroup.procs: how many processes, and one of them
// (the first listed; 0 when empty) to find the cgroup's network namespace.
type Procs struct {
	Count    int
	FirstPID int
}

func parseProcs(b []byte, out *Procs) error {
	*out = Procs{}
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			continue
		}
		pid, ok := parseUint(line)
		if !ok || pid == 0 || pid > 1<<22 {
			return parseError(n, line, "not a PID")
		}
		if out.Count == 0 {
			out.FirstPID = int(pid)
		}
		out.Count++
	}
	return nil
}
