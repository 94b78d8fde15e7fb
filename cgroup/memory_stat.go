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
//	file_dirty 12288
//	file_writeback 0
//	workingset_refault_anon 0
//	workingset_refault_file 311
//	pgscan 1024
//	pgsteal 1000
//	pgfault 7451
//	pgmajfault 12

// MemoryStat holds the memory.stat keys nodeagent serves, in bytes except
// the page counters.
type MemoryStat struct {
	Anon, File, FileMapped   uint64
	ActiveFile, InactiveFile uint64
	PgFault, PgMajFault      uint64

	// V2Keys says which of the keys below the file had. They are cgroup
	// v2's: v1's memory.stat, read on a hybrid host, has none of them
	// under these names (its dirty and writeback are other counters of
	// the same pages, its refaults local ones), and a kernel before 5.9
	// has no workingset_refault_anon or _file.
	V2Keys                                       MemoryStatKeys
	FileDirty, FileWriteback                     uint64
	WorkingsetRefaultAnon, WorkingsetRefaultFile uint64
	PgScan, PgSteal                              uint64

	// SwapV1 is v1's total_swap, the swap a hybrid host's cgroup uses
	// (v2 has it in memory.swap.current instead); HasSwapV1 says the key
	// was there (v1 prints it only with swap accounting on).
	SwapV1    uint64
	HasSwapV1 bool
}

// MemoryStatKeys is a set of v2-only memory.stat keys.
type MemoryStatKeys uint8

// The v2-only memory.stat keys.
const (
	KeyFileDirty MemoryStatKeys = 1 << iota
	KeyFileWriteback
	KeyWorkingsetRefaultAnon
	KeyWorkingsetRefaultFile
	KeyPgScan
	KeyPgSteal
)

// Has says whether k is in the set.
func (s MemoryStatKeys) Has(k MemoryStatKeys) bool { return s&k == k }

func parseMemoryStat(b []byte, out *MemoryStat) error {
	*out = MemoryStat{}
	return parseKeyed(b, func(k []byte, v uint64) { out.set(string(k), v, true) })
}

// set stores a memory.stat key nodeagent serves; other keys are ignored,
// and so are the v2-only keys unless v2 (the file is cgroup v2's).
func (m *MemoryStat) set(key string, v uint64, v2 bool) {
	var dst *uint64
	var k MemoryStatKeys
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
	case "file_dirty":
		dst, k = &m.FileDirty, KeyFileDirty
	case "file_writeback":
		dst, k = &m.FileWriteback, KeyFileWriteback
	case "workingset_refault_anon":
		dst, k = &m.WorkingsetRefaultAnon, KeyWorkingsetRefaultAnon
	case "workingset_refault_file":
		dst, k = &m.WorkingsetRefaultFile, KeyWorkingsetRefaultFile
	case "pgscan":
		dst, k = &m.PgScan, KeyPgScan
	case "pgsteal":
		dst, k = &m.PgSteal, KeyPgSteal
	}
	if dst != nil && v2 {
		*dst = v
		m.V2Keys |= k
	}
}
