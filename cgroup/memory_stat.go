package cgroup

// A memory.stat file (abridged; a 6.x kernel prints about 60 keys):
//
//	anon 10452992
//	file 4513792
//	kernel 1249280
//	file_mapped 2703360
//	inactive_anon 0
//	active_anon 10452992
//	inactive_file 2433024
//	active_file 2080768
//	pgfault 7451
//	pgmajfault 12

// MemoryStat holds the memory.stat keys nodeagent serves, in bytes except
// the page-fault counters.
type MemoryStat struct {
	Anon, File, FileMapped   uint64
	ActiveFile, InactiveFile uint64
	PgFault, PgMajFault      uint64
}

func parseMemoryStat(b []byte, out *MemoryStat) error {
	*out = MemoryStat{}
	return parseKeyed(b, func(k []byte, v uint64) { out.set(string(k), v) })
}

// set stores a memory.stat key nodeagent serves; other keys are ignored.
func (m *MemoryStat) set(key string, v uint64) {
	switch key {
	case "anon":
		m.Anon = v
	case "file":
		m.File = v
	case "file_mapped":
		m.FileMapped = v
	case "active_file":
		m.ActiveFile = v
	case "inactive_file":
		m.InactiveFile = v
	case "pgfault":
		m.PgFault = v
	case "pgmajfault":
		m.PgMajFault = v
	}
}
