package cgroup

import "bytes"

// An io.stat file, one line per block device the cgroup did I/O on
// (devices without I/O are left out by the kernel); iocost and other
// policies may append keys of their own, some with fractional values:
//
//	254:0 rbytes=479232 wbytes=2687844352 rios=8 wios=31220 dbytes=0 dios=0
//	8:16 rbytes=0 wbytes=4096 rios=0 wios=1 dbytes=0 dios=0 cost.vrate=100.00

// IOStat is one io.stat line.
type IOStat struct {
	Major, Minor uint32
	RBytes       uint64
	WBytes       uint64
	RIOs, WIOs   uint64
}

// parseIOStat appends the lines of b to out.
func parseIOStat(b []byte, out []IOStat) ([]IOStat, error) {
	for n := 1; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			continue
		}
		dev, rest, _ := bytes.Cut(line, []byte{' '})
		maj, min, ok := bytes.Cut(dev, []byte{':'})
		if !ok {
			return out, parseError(n, line, "want MAJ:MIN first")
		}
		mj, ok1 := parseUint(maj)
		mn, ok2 := parseUint(min)
		if !ok1 || !ok2 || mj > 1<<12 || mn > 1<<20 {
			return out, parseError(n, line, "device is not MAJ:MIN")
		}
		e := IOStat{Major: uint32(mj), Minor: uint32(mn)}
		for len(rest) > 0 {
			var field []byte
			field, rest, _ = bytes.Cut(rest, []byte{' '})
			if len(field) == 0 {
				continue
			}
			k, v, ok := bytes.Cut(field, []byte{'='})
			if !ok {
				return out, parseError(n, line, "want key=value fields")
			}
			var dst *uint64
			switch string(k) {
			case "rbytes":
				dst = &e.RBytes
			case "wbytes":
				dst = &e.WBytes
			case "rios":
				dst = &e.RIOs
			case "wios":
				dst = &e.WIOs
			default:
				continue // dbytes, dios, cost.*, and whatever kernels add
			}
			x, ok := parseUint(v)
			if !ok {
				return out, parseError(n, line, string(k)+" is not an unsigned integer")
			}
			*dst = x
		}
		out = append(out, e)
	}
	return out, nil
}
