package cgroup

// A cpu.stat file:
//
//	usage_usec 1386153
//	user_usec 1049873
//	system_usec 336280
//	nr_periods 1542
//	nr_throttled 12
//	throttled_usec 84213
//	nr_bursts 0
//	burst_usec 0
//
// The first three lines exist in every cgroup; the throttling lines only
// where the cpu controller is enabled, and the burst lines since Linux
// 5.14.

// CPUStat is a cgroup's cpu.stat, times in microseconds.
type CPUStat struct {
	UsageUsec, UserUsec, SystemUsec       uint64
	NrPeriods, NrThrottled, ThrottledUsec uint64
	NrBursts, BurstUsec                   uint64
	// ThrottledNsec and BurstNsec are the times as a v1 cpu.stat counts
	// them, in nanoseconds (a hybrid host); 0 from a v2 cpu.stat.
	ThrottledNsec, BurstNsec uint64
}

// ThrottledSeconds is the time throttled, to the nanosecond where v1
// counted it so.
func (c *CPUStat) ThrottledSeconds() float64 {
	if c.ThrottledNsec != 0 {
		return float64(c.ThrottledNsec) / 1e9
	}
	return float64(c.ThrottledUsec) / 1e6
}

// BurstSeconds is the time run in bursts, likewise.
func (c *CPUStat) BurstSeconds() float64 {
	if c.BurstNsec != 0 {
		return float64(c.BurstNsec) / 1e9
	}
	return float64(c.BurstUsec) / 1e6
}

func parseCPUStat(b []byte, out *CPUStat) error {
	*out = CPUStat{}
	return parseCPUStatKeys(b, out)
}

// A v1 cpu.stat (the v1 cpu hierarchy of a hybrid host), times in
// nanoseconds; the burst lines since Linux 5.14:
//
//	nr_periods 56
//	nr_throttled 31
//	throttled_time 1942194316
//	nr_bursts 0
//	burst_time 0
//
// Its usage is not there (v1 counts it in cpuacct); it fills the throttling
// fields of a CPUStat that the v2 cpu.stat's usage lines filled.
func parseCPUStatV1(b []byte, out *CPUStat) error {
	out.NrPeriods, out.NrThrottled, out.ThrottledUsec, out.ThrottledNsec = 0, 0, 0, 0
	out.NrBursts, out.BurstUsec, out.BurstNsec = 0, 0, 0
	return parseCPUStatKeys(b, out)
}

// parseCPUStatKeys sets the fields of the keys b has, v2's and v1's alike
// (no file has both kinds of times).
func parseCPUStatKeys(b []byte, out *CPUStat) error {
	return parseKeyed(b, func(k []byte, v uint64) {
		switch string(k) {
		case "usage_usec":
			out.UsageUsec = v
		case "user_usec":
			out.UserUsec = v
		case "system_usec":
			out.SystemUsec = v
		case "nr_periods":
			out.NrPeriods = v
		case "nr_throttled":
			out.NrThrottled = v
		case "throttled_usec":
			out.ThrottledUsec = v
		case "throttled_time": // v1, nanoseconds
			out.ThrottledUsec, out.ThrottledNsec = v/1000, v
		case "nr_bursts":
			out.NrBursts = v
		case "burst_usec":
			out.BurstUsec = v
		case "burst_time": // v1, nanoseconds
			out.BurstUsec, out.BurstNsec = v/1000, v
		}
	})
}
