package cgroup

import "bytes"

// A cpu.max file, quota and period in microseconds; "max" means no quota:
//
//	50000 100000
//	max 100000

// CPUMax is a cgroup's CFS bandwidth limit.
type CPUMax struct {
	// Quota is the runtime per period; HasQuota is false for "max".
	Quota    uint64
	HasQuota bool
	Period   uint64
}

// ParseCPUMax parses the contents of a cpu.max file.
func ParseCPUMax(b []byte) (CPUMax, error) {
	var m CPUMax
	err := parseCPUMax(b, &m)
	return m, err
}

func parseCPUMax(b []byte, out *CPUMax) error {
	*out = CPUMax{}
	line, rest := nextLine(b)
	if len(bytes.TrimSpace(rest)) != 0 {
		return parseError(2, rest, "want one line")
	}
	quota, period, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return parseError(1, line, "want `quota period`")
	}
	if p, ok := parseUint(period); ok {
		out.Period = p
	} else {
		return parseError(1, line, "period is not an unsigned integer")
	}
	if string(quota) == "max" {
		return nil
	}
	q, ok := parseUint(quota)
	if !ok {
		return parseError(1, line, "quota is neither `max` nor an unsigned integer")
	}
	out.Quota, out.HasQuota = q, true
	return nil
}

// parseCFSQuota parses a v1 cpu.cfs_quota_us, the quota in microseconds or
// -1 for none, into out's quota; the period is in another file
// (FileCPUPeriodV1), read after it.
func parseCFSQuota(b []byte, out *CPUMax) error {
	*out = CPUMax{}
	line, rest := nextLine(b)
	if len(bytes.TrimSpace(rest)) != 0 {
		return parseError(2, rest, "want one line")
	}
	if string(line) == "-1" {
		return nil
	}
	q, ok := parseUint(line)
	if !ok {
		return parseError(1, line, "quota is neither -1 nor an unsigned integer")
	}
	out.Quota, out.HasQuota = q, true
	return nil
}
