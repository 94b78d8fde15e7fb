package cgroup

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCPUStat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		want    CPUStat
		wantErr bool
	}{
		{"full", "usage_usec 1386153\nuser_usec 1049873\nsystem_usec 336280\nnr_periods 1542\nnr_throttled 12\nthrottled_usec 84213\nnr_bursts 0\nburst_usec 0\n",
			CPUStat{UsageUsec: 1386153, UserUsec: 1049873, SystemUsec: 336280, NrPeriods: 1542, NrThrottled: 12, ThrottledUsec: 84213}, false},
		{"no cpu controller", "usage_usec 5\nuser_usec 3\nsystem_usec 2\n", CPUStat{UsageUsec: 5, UserUsec: 3, SystemUsec: 2}, false},
		{"unknown keys ignored", "usage_usec 5\ncore_sched.force_idle_usec 9\n", CPUStat{UsageUsec: 5}, false},
		{"no trailing newline", "usage_usec 7", CPUStat{UsageUsec: 7}, false},
		{"empty", "", CPUStat{}, true},
		{"truncated line", "usage_usec 5\nuser_u", CPUStat{}, true},
		{"garbage value", "usage_usec 5x\n", CPUStat{}, true},
		{"negative", "usage_usec -5\n", CPUStat{}, true},
		{"overflow", "usage_usec 18446744073709551616\n", CPUStat{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got CPUStat
			err := parseCPUStat([]byte(tc.in), &got)
			if tc.wantErr {
				if !errors.Is(err, ErrParse) {
					t.Fatalf("err = %v, want ErrParse", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestParseMemoryStatAndEvents(t *testing.T) {
	t.Parallel()
	var ms MemoryStat
	in := "anon 10452992\nfile 4513792\nkernel 1249280\nfile_mapped 2703360\ninactive_file 2433024\nactive_file 2080768\npgfault 7451\npgmajfault 12\nworkingset_refault_anon 0\n"
	if err := parseMemoryStat([]byte(in), &ms); err != nil {
		t.Fatal(err)
	}
	// A zero is as present as any other value.
	want := MemoryStat{Anon: 10452992, File: 4513792, FileMapped: 2703360, ActiveFile: 2080768, InactiveFile: 2433024, PgFault: 7451, PgMajFault: 12,
		V2Keys: KeyWorkingsetRefaultAnon}
	if diff := cmp.Diff(want, ms); diff != "" {
		t.Errorf("memory.stat -want +got:\n%s", diff)
	}
	for _, bad := range []string{"anon\n", "anon 1 2\n", "\n\n", "anon=1\n"} {
		if err := parseMemoryStat([]byte(bad), &ms); !errors.Is(err, ErrParse) {
			t.Errorf("memory.stat %q: err = %v, want ErrParse", bad, err)
		}
	}
	var ev MemoryEvents
	if err := parseMemoryEvents([]byte("low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\noom_group_kill 0\n"), &ev); err != nil {
		t.Fatal(err)
	}
	if ev != (MemoryEvents{Max: 3, OOM: 2, OOMKill: 1}) {
		t.Errorf("memory.events = %+v", ev)
	}
}

func TestParsePressure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		want    Pressure
		wantErr bool
	}{
		{"some and full", "some avg10=0.00 avg60=0.12 avg300=0.05 total=1503217\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=842002\n",
			Pressure{SomeTotal: 1503217, FullTotal: 842002, HasFull: true}, false},
		{"old kernel cpu", "some avg10=1.00 avg60=0.00 avg300=0.00 total=12\n", Pressure{SomeTotal: 12}, false},
		{"no total", "some avg10=0.00\n", Pressure{}, true},
		{"bad total", "some total=x\n", Pressure{}, true},
		{"unknown line", "most total=1\n", Pressure{}, true},
		{"only full", "full total=1\n", Pressure{}, true},
		{"empty", "", Pressure{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got Pressure
			err := parsePressure([]byte(tc.in), &got)
			if tc.wantErr != (err != nil) || (err != nil && !errors.Is(err, ErrParse)) {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseCPUMaxAndValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in      string
		want    CPUMax
		wantErr bool
	}{
		{"max 100000\n", CPUMax{Period: 100000}, false},
		{"50000 100000\n", CPUMax{Quota: 50000, HasQuota: true, Period: 100000}, false},
		{"50000\n", CPUMax{}, true},
		{"max max\n", CPUMax{}, true},
		{"-1 100000\n", CPUMax{}, true},
		{"1 2\n3 4\n", CPUMax{}, true},
		{"", CPUMax{}, true},
	} {
		var got CPUMax
		err := parseCPUMax([]byte(tc.in), &got)
		if tc.wantErr != (err != nil) || (err == nil && got != tc.want) {
			t.Errorf("cpu.max %q: got %+v, %v; want %+v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
	for _, tc := range []struct {
		in       string
		allowMax bool
		want     Value
		wantErr  bool
	}{
		{"10452992\n", false, Value{V: 10452992}, false},
		{"max\n", true, Value{Max: true}, false},
		{"max\n", false, Value{}, true},
		{"12 13\n", true, Value{}, true},
		{"", false, Value{}, true},
		{"1\n2\n", false, Value{}, true},
	} {
		var got Value
		err := parseValue([]byte(tc.in), tc.allowMax, &got)
		if tc.wantErr != (err != nil) || (err == nil && got != tc.want) {
			t.Errorf("value %q: got %+v, %v; want %+v, err %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseProcs(t *testing.T) {
	t.Parallel()
	var p Procs
	if err := parseProcs([]byte("1874\n1901\n77\n"), &p); err != nil || p != (Procs{Count: 3, FirstPID: 1874}) {
		t.Errorf("got %+v, %v", p, err)
	}
	if err := parseProcs(nil, &p); err != nil || p != (Procs{}) {
		t.Errorf("empty: got %+v, %v", p, err)
	}
	// Read without the host's PID namespace: processes outside it are
	// listed as 0, counted, and never taken as the PID to open.
	if err := parseProcs([]byte("0\n0\n4181\n0\n"), &p); err != nil || p != (Procs{Count: 4, Hidden: 3, FirstPID: 4181}) {
		t.Errorf("hidden PIDs: got %+v, %v", p, err)
	}
	if err := parseProcs([]byte("0\n0\n"), &p); err != nil || p != (Procs{Count: 2, Hidden: 2}) {
		t.Errorf("only hidden PIDs: got %+v, %v", p, err)
	}
	for _, bad := range []string{"12\nabc\n", "-3\n", "4194305\n"} {
		if err := parseProcs([]byte(bad), &p); !errors.Is(err, ErrParse) {
			t.Errorf("%q: err = %v", bad, err)
		}
	}
}

func TestParseIOStat(t *testing.T) {
	t.Parallel()
	in := "254:0 rbytes=479232 wbytes=2687844352 rios=8 wios=31220 dbytes=0 dios=0\n8:16 rbytes=0 wbytes=4096 rios=0 wios=1 dbytes=0 dios=0 cost.vrate=100.00\n"
	got, err := parseIOStat([]byte(in), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []IOStat{
		{Major: 254, Minor: 0, RBytes: 479232, WBytes: 2687844352, RIOs: 8, WIOs: 31220},
		{Major: 8, Minor: 16, WBytes: 4096, WIOs: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	if got, err := parseIOStat([]byte(""), nil); err != nil || len(got) != 0 {
		t.Errorf("empty io.stat: %v, %v", got, err)
	}
	for _, bad := range []string{"254 rbytes=1\n", "a:b rbytes=1\n", "8:0 rbytes\n", "8:0 rbytes=x\n", "8:0 rbytes=1 wbytes=-2\n"} {
		if _, err := parseIOStat([]byte(bad), nil); !errors.Is(err, ErrParse) {
			t.Errorf("%q: err = %v, want ErrParse", bad, err)
		}
	}
}

func TestParseErrorQuotesLine(t *testing.T) {
	t.Parallel()
	var s CPUStat
	err := parseCPUStat([]byte("usage_usec 1\nuser_usec \xff\n"), &s)
	if err == nil || err.Error() != `malformed cgroup file: line 2 "user_usec \xff": value is not an unsigned integer` {
		t.Errorf("err = %v", err)
	}
}

// The parsers must never panic, and must either fail or return what they
// were given: every value they accept is checked against the input read
// again by the standard library (strings.Fields, strconv.ParseUint). The
// seed corpus runs in go test; go test -fuzz explores.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{
		"usage_usec 1386153\nuser_usec 1049873\nsystem_usec 336280\nnr_periods 1542\n",
		"anon 1\nfile 2\ninactive_file 3\n",
		"some avg10=0.00 avg60=0.12 avg300=0.05 total=1503217\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=842002\n",
		"max 100000\n", "50000 100000\n", "max\n", "123\n", "007\n",
		"254:0 rbytes=479232 wbytes=2687844352 rios=8 wios=31220 dbytes=0 dios=0\n",
		"1874\n1901\n", "", "\n", " \n", "usage_usec", "=", ":", "some total=",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var st Stats
		for fl := File(0); fl < numFiles; fl++ {
			_ = st.parse(fl, b)
			_ = st.parseV1(fl, b)
		}
		lines := nonEmptyLines(b)
		for _, allowMax := range []bool{false, true} {
			var v Value
			if parseValue(b, allowMax, &v) != nil {
				continue
			}
			first, rest, _ := strings.Cut(string(b), "\n")
			switch {
			case strings.TrimSpace(rest) != "":
				t.Fatalf("parseValue accepted more than one line: %q", b)
			case v.Max && (!allowMax || first != "max"):
				t.Fatalf("parseValue(allowMax=%v) read max from %q", allowMax, first)
			case !v.Max && strictUint(t, first) != v.V:
				t.Fatalf("parseValue read %d from %q", v.V, first)
			}
		}
		var cpu CPUStat
		if parseCPUStat(b, &cpu) == nil {
			want := map[string]uint64{}
			for _, l := range lines {
				k, v, _ := strings.Cut(l, " ")
				want[k] = strictUint(t, v)
			}
			got := map[string]uint64{"usage_usec": cpu.UsageUsec, "user_usec": cpu.UserUsec, "system_usec": cpu.SystemUsec,
				"nr_periods": cpu.NrPeriods, "nr_throttled": cpu.NrThrottled, "throttled_usec": cpu.ThrottledUsec}
			for k, v := range got {
				if want[k] != v {
					t.Fatalf("cpu.stat %s: read %d, the input says %d", k, v, want[k])
				}
			}
		}
		if io, err := parseIOStat(b, nil); err == nil {
			if len(io) != len(lines) {
				t.Fatalf("io.stat: %d entries from %d lines", len(io), len(lines))
			}
			for i, e := range io {
				if e.Major > 1<<12 {
					t.Fatalf("major %d accepted", e.Major)
				}
				dev := strings.Fields(lines[i])[0]
				maj, min, _ := strings.Cut(dev, ":")
				if strictUint(t, maj) != uint64(e.Major) || strictUint(t, min) != uint64(e.Minor) {
					t.Fatalf("io.stat line %d: device %q read as %d:%d", i+1, dev, e.Major, e.Minor)
				}
			}
		}
		var p Pressure
		if parsePressure(b, &p) == nil {
			for _, l := range lines {
				kind, _, _ := strings.Cut(l, " ")
				got := p.SomeTotal
				if kind == "full" {
					got = p.FullTotal
				}
				if total := lastTotal(t, l); total != got {
					t.Fatalf("pressure %s: read total %d, the input says %d", kind, got, total)
				}
			}
		}
		var procs Procs
		if parseProcs(b, &procs) == nil && len(lines) > 0 {
			if procs.Count != len(lines) || uint64(procs.FirstPID) != strictUint(t, lines[0]) {
				t.Fatalf("cgroup.procs: %d PIDs, first %d, from %q", procs.Count, procs.FirstPID, lines)
			}
		}
	})
}

// nonEmptyLines splits b as the parsers do (on \n), dropping empty lines.
func nonEmptyLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// strictUint is strconv's reading of a number a parser accepted; the test
// fails if strconv disagrees that it is one.
func strictUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("a parser accepted %q as a number: %v", s, err)
	}
	return v
}

// lastTotal is the value of the last total= field of a pressure line.
func lastTotal(t *testing.T, line string) uint64 {
	t.Helper()
	var total uint64
	for _, f := range strings.Split(line, " ") {
		if v, ok := strings.CutPrefix(f, "total="); ok {
			total = strictUint(t, v)
		}
	}
	return total
}
