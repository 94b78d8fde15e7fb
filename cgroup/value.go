package cgroup

import "bytes"

// Single-value files hold one decimal number, or "max" for no limit:
//
//	memory.current, memory.peak, memory.swap.current, pids.current: 10452992
//	memory.max, memory.min, memory.swap.max, pids.max: max | 268435456
//	cpu.weight: 100

// Value is a single-value file's content; Max is true for "max".
type Value struct {
	V   uint64
	Max bool
}

// parseValue parses a single-value file; "max" is accepted only when
// allowMax (limits), never for counters.
func parseValue(b []byte, allowMax bool, out *Value) error {
	*out = Value{}
	line, rest := nextLine(b)
	if len(bytes.TrimSpace(rest)) != 0 {
		return parseError(2, rest, "want one line")
	}
	if allowMax && string(line) == "max" {
		out.Max = true
		return nil
	}
	v, ok := parseUint(line)
	if !ok {
		if allowMax {
			return parseError(1, line, "want `max` or an unsigned integer")
		}
		return parseError(1, line, "want an unsigned integer")
	}
	out.V = v
	return nil
}
