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
}

func parseCPUStat(b []byte, out *CPUStat) error {
	*out = CPUStat{}
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
		case "nr_bursts":
			out.NrBursts = v
		case "burst_usec":
			out.BurstUsec = v
		}
	})
}
