package cgroup

import "bytes"

// A cpu.pressure, memory.pressure or io.pressure file:
//
//	some avg10=0.00 avg60=0.12 avg300=0.05 total=1503217
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=842002
//
// Only the totals (µs stalled) are served; the averages are derived in
// PromQL. Kernels before 5.13 have no "full" line in cpu.pressure.

// Pressure holds the stall totals of one pressure file, in microseconds.
type Pressure struct {
	SomeTotal, FullTotal uint64
	HasFull              bool
}

// pressureFileList lists the files of pressureFiles.
var pressureFileList = [...]File{FileCPUPressure, FileMemoryPressure, FileIOPressure}

// Pressure is the field of s that pressure file f (cpu.pressure,
// memory.pressure or io.pressure) is parsed into.
func (s *Stats) Pressure(f File) *Pressure {
	switch f {
	case FileCPUPressure:
		return &s.CPUPressure
	case FileMemoryPressure:
		return &s.MemoryPressure
	}
	return &s.IOPressure
}

func parsePressure(b []byte, out *Pressure) error {
	*out = Pressure{}
	var some bool
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			continue
		}
		kind, rest, _ := bytes.Cut(line, []byte{' '})
		var dst *uint64
		switch string(kind) {
		case "some":
			dst, some = &out.SomeTotal, true
		case "full":
			dst, out.HasFull = &out.FullTotal, true
		default:
			return parseError(n, line, "want a `some` or `full` line")
		}
		found := false
		for len(rest) > 0 {
			var field []byte
			field, rest, _ = bytes.Cut(rest, []byte{' '})
			if v, ok := bytes.CutPrefix(field, []byte("total=")); ok {
				t, ok := parseUint(v)
				if !ok {
					return parseError(n, line, "total is not an unsigned integer")
				}
				*dst, found = t, true
			}
		}
		if !found {
			return parseError(n, line, "no total=")
		}
	}
	if !some {
		return parseError(1, nil, "no `some` line")
	}
	return nil
}
