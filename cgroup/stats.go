package cgroup

// Stats is what Group.Read found in one cgroup's files. A file's fields
// are meaningful only when Present has it: absent files (a controller not
// enabled, the root cgroup, an older kernel) differ from zeros.
type Stats struct {
	Present FileSet

	Procs          Procs        // cgroup.procs
	CPU            CPUStat      // cpu.stat
	CPUMax         CPUMax       // cpu.max
	CPUWeight      Value        // cpu.weight
	CPUShares      uint64       // cpu.shares, for cpu.weight on a hybrid host (hybrid.go); 0 from v2
	CPUPressure    Pressure     // cpu.pressure
	MemoryCurrent  Value        // memory.current
	Memory         MemoryStat   // memory.stat
	MemoryPeak     Value        // memory.peak
	MemoryMax      Value        // memory.max
	MemoryMin      Value        // memory.min
	SwapCurrent    Value        // memory.swap.current
	SwapMax        Value        // memory.swap.max
	MemoryEvents   MemoryEvents // memory.events
	MemoryPressure Pressure     // memory.pressure
	IO             []IOStat     // io.stat
	IOPressure     Pressure     // io.pressure
	PidsCurrent    Value        // pids.current
	PidsMax        Value        // pids.max
}

// parse parses file f's content into s.
func (s *Stats) parse(f File, b []byte) error {
	switch f {
	case FileCgroupProcs:
		return parseProcs(b, &s.Procs)
	case FileCPUStat:
		return parseCPUStat(b, &s.CPU)
	case FileCPUMax:
		return parseCPUMax(b, &s.CPUMax)
	case FileCPUWeight:
		return parseValue(b, false, &s.CPUWeight)
	case FileCPUPressure, FileMemoryPressure, FileIOPressure:
		return parsePressure(b, s.Pressure(f))
	case FileMemoryCurrent:
		return parseValue(b, false, &s.MemoryCurrent)
	case FileMemoryStat:
		return parseMemoryStat(b, &s.Memory)
	case FileMemoryPeak:
		return parseValue(b, false, &s.MemoryPeak)
	case FileMemoryMax:
		return parseValue(b, true, &s.MemoryMax)
	case FileMemoryMin:
		return parseValue(b, true, &s.MemoryMin)
	case FileMemorySwapCurrent:
		return parseValue(b, false, &s.SwapCurrent)
	case FileMemorySwapMax:
		return parseValue(b, true, &s.SwapMax)
	case FileMemoryEvents:
		return parseMemoryEvents(b, &s.MemoryEvents)
	case FileIOStat:
		var err error
		s.IO, err = parseIOStat(b, s.IO[:0])
		return err
	case FilePidsCurrent:
		return parseValue(b, false, &s.PidsCurrent)
	case FilePidsMax:
		return parseValue(b, true, &s.PidsMax)
	}
	return nil
}
