package cgroup

// A cgroup.procs file lists the PIDs of the processes directly in the
// cgroup (not its descendants), one per line, unsorted, as the reader's
// PID namespace numbers them; a process outside that namespace (a host
// service, read by an agent in a container without the host's PID
// namespace) is listed as 0:
//
//	1874
//	0
//	1901

// Procs summarises cgroup.procs: how many processes, how many of them lie
// outside the reader's PID namespace (listed as 0), and one PID the reader
// can use (the first listed that is not 0; 0 when there is none) to find
// the cgroup's network namespace.
type Procs struct {
	Count    int // every process, those listed as 0 included
	Hidden   int // processes outside the reader's PID namespace
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
		if !ok || pid > 1<<22 {
			return parseError(n, line, "not a PID")
		}
		out.Count++
		switch {
		case pid == 0:
			// Still a process of the cgroup, but no PID to open.
			out.Hidden++
		case out.FirstPID == 0:
			out.FirstPID = int(pid)
		}
	}
	return nil
}
