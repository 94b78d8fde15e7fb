package cgroup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// hybridTree writes a hybrid host's layout below a temporary directory:
// unified/ (cgroup v2 without the memory controller) and memory/ (the v1
// memory hierarchy) with one cgroup "pod/ctr" in both, and returns the
// directory.
func hybridTree(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	files := map[string]string{
		"unified/cgroup.controllers":           "cpu io pids\n",
		"unified/cgroup.procs":                 "1\n",
		"unified/cpu.stat":                     "usage_usec 9\n",
		"unified/pod/ctr/cgroup.procs":         "41\n",
		"unified/pod/ctr/cpu.stat":             "usage_usec 7\nuser_usec 4\nsystem_usec 3\n",
		"unified/pod/ctr/memory.pressure":      "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2\n",
		"memory/memory.usage_in_bytes":         "2541244416\n",
		"memory/pod/ctr/memory.usage_in_bytes": "10485760\n",
		"memory/pod/ctr/memory.stat": "cache 4096\nrss 1019904\nmapped_file 0\ninactive_file 0\n" +
			"total_cache 4194304\ntotal_rss 6291456\ntotal_mapped_file 1048576\ntotal_pgfault 100\ntotal_pgmajfault 3\n" +
			"total_inactive_file 2097152\ntotal_active_file 1048576\n",
		"memory/pod/ctr/memory.limit_in_bytes":      "9223372036854771712\n",
		"memory/pod/ctr/memory.max_usage_in_bytes":  "20971520\n",
		"memory/pod/ctr/memory.soft_limit_in_bytes": "67108864\n",
	}
	writeFiles(t, base, files)
	return base
}

// TestHybridMemoryFromV1: on a hybrid host the memory files come from the
// v1 memory hierarchy, in the v2 fields, with an unlimited v1 limit read
// as no limit; everything else still comes from v2.
func TestHybridMemoryFromV1(t *testing.T) {
	t.Parallel()
	base := hybridTree(t)
	fs, err := NewFS(filepath.Join(base, "unified"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fs.MemoryV1(), filepath.Join(base, "memory"); got != want {
		t.Fatalf("MemoryV1 = %q, want %q", got, want)
	}
	// The v2 hierarchy has no memory files, but its PSI files count
	// their subtrees as on a v2 host.
	if got, want := fs.SubtreeTotals(), Files(FileCPUPressure, FileMemoryPressure, FileIOPressure); got != want {
		t.Errorf("SubtreeTotals = %v on a hybrid host, want %v", got, want)
	}
	g := fs.Open("/pod/ctr", 1, NewBudget(100))
	defer g.Close()
	var buf []byte
	var st Stats
	want := Files(FileCgroupProcs, FileCPUStat, FileMemoryCurrent, FileMemoryStat, FileMemoryMax, FileMemoryPeak, FileMemoryMin, FileMemoryPressure, FileMemorySwapCurrent, FileMemoryEvents)
	if err := g.Read(want, want, &buf, &st); err != nil {
		t.Fatal(err)
	}
	got := Stats{Present: st.Present, CPU: st.CPU, MemoryCurrent: st.MemoryCurrent, Memory: st.Memory,
		MemoryMax: st.MemoryMax, MemoryPeak: st.MemoryPeak, MemoryMin: st.MemoryMin, MemoryPressure: st.MemoryPressure}
	wantStats := Stats{
		// No v1 stand-in for swap and memory.events: absent.
		Present:        want &^ Files(FileMemorySwapCurrent, FileMemoryEvents),
		CPU:            CPUStat{UsageUsec: 7, UserUsec: 4, SystemUsec: 3},
		MemoryCurrent:  Value{V: 10485760},
		Memory:         MemoryStat{Anon: 6291456, File: 4194304, FileMapped: 1048576, ActiveFile: 1048576, InactiveFile: 2097152, PgFault: 100, PgMajFault: 3},
		MemoryMax:      Value{Max: true},
		MemoryPeak:     Value{V: 20971520},
		MemoryMin:      Value{V: 67108864},
		MemoryPressure: Pressure{SomeTotal: 5, FullTotal: 2, HasFull: true},
	}
	if diff := cmp.Diff(wantStats, got); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}

	// A v2 cgroup with no counterpart in the v1 memory hierarchy (a cgroup
	// the memory controller does not know) has no memory files; it has not
	// vanished.
	if err := os.MkdirAll(filepath.Join(base, "unified", "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cgroup.procs", "cpu.stat"} {
		if err := os.WriteFile(filepath.Join(base, "unified", "other", f), []byte("usage_usec 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	other := fs.Open("/other", 2, nil)
	defer other.Close()
	st = Stats{}
	if err := other.Read(Files(FileCPUStat, FileMemoryCurrent, FileMemoryStat), 0, &buf, &st); err != nil {
		t.Fatal(err)
	}
	if st.Present != Files(FileCPUStat) {
		t.Errorf("present %b, want cpu.stat only", st.Present)
	}
}

// TestHybridOnlyWithoutV2Memory: a v2 root that has the memory controller
// reads memory there, whatever stands beside it.
func TestHybridOnlyWithoutV2Memory(t *testing.T) {
	t.Parallel()
	base := hybridTree(t)
	if err := os.WriteFile(filepath.Join(base, "unified", "cgroup.controllers"), []byte("cpu memory io pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fs, err := NewFS(filepath.Join(base, "unified"))
	if err != nil {
		t.Fatal(err)
	}
	if fs.MemoryV1() != "" {
		t.Errorf("MemoryV1 = %q with memory in v2", fs.MemoryV1())
	}
}

// TestHybridHost: on this machine, when it is a hybrid host, the unified
// hierarchy's memory comes from /sys/fs/cgroup/memory and its CPU limits
// from /sys/fs/cgroup/cpu, and the root's are read.
func TestHybridHost(t *testing.T) {
	t.Parallel()
	if !isCgroup2("/sys/fs/cgroup/unified") {
		t.Skip("not a hybrid host")
	}
	fs, err := NewFS("/sys/fs/cgroup/unified")
	if err != nil {
		t.Fatal(err)
	}
	if fs.MemoryV1() != "/sys/fs/cgroup/memory" {
		t.Fatalf("MemoryV1 = %q, want /sys/fs/cgroup/memory", fs.MemoryV1())
	}
	g := fs.Open("/", 1, nil)
	defer g.Close()
	var buf []byte
	var st Stats
	if err := g.Read(Files(FileMemoryCurrent, FileMemoryStat), 0, &buf, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Present.Has(FileMemoryCurrent) || st.MemoryCurrent.V == 0 || st.Memory.Anon == 0 {
		t.Errorf("root memory %+v %+v, present %b", st.MemoryCurrent, st.Memory, st.Present)
	}
	// CPU limits and throttling from the v1 cpu hierarchy.
	if !fs.CPUFromV1() {
		t.Fatal("the v1 cpu hierarchy was not found")
	}
	cpu := Files(FileCPUStat, FileCPUStatV1, FileCPUMax, FileCPUPeriodV1, FileCPUWeight)
	if err := g.Read(cpu, 0, &buf, &st); err != nil {
		t.Fatal(err)
	}
	if st.Present&cpu != cpu || st.CPUShares == 0 || st.CPUMax.Period == 0 || st.CPUMax.HasQuota || st.CPU.UsageUsec == 0 {
		t.Errorf("root cpu: present %v, shares %d, cpu.max %+v, cpu.stat %+v", st.Present, st.CPUShares, st.CPUMax, st.CPU)
	}
}

func TestParseMemoryStatV1(t *testing.T) {
	t.Parallel()
	var m MemoryStat
	// The per-cgroup keys (cache, rss, ...) are ignored: cAdvisor serves
	// the hierarchical ones.
	if err := parseMemoryStatV1([]byte("cache 1\nrss 2\ntotal_cache 10\ntotal_rss 20\nhierarchical_memory_limit 9223372036854771712\n"), &m); err != nil {
		t.Fatal(err)
	}
	if m != (MemoryStat{Anon: 20, File: 10}) {
		t.Errorf("%+v", m)
	}
	// total_swap (printed with swap accounting on) stands in for
	// memory.swap.current; the local swap key is ignored.
	if err := parseMemoryStatV1([]byte("swap 1\ntotal_rss 20\ntotal_swap 8192\n"), &m); err != nil {
		t.Fatal(err)
	}
	if m != (MemoryStat{Anon: 20, SwapV1: 8192, HasSwapV1: true}) {
		t.Errorf("v1 memory.stat with swap: %+v", m)
	}
	// v1's refaults and dirty pages are not v2's keys: a hybrid host
	// serves none of the v2-only memory.stat families.
	if err := parseMemoryStatV1([]byte("total_rss 20\ntotal_dirty 4096\ntotal_writeback 0\ntotal_workingset_refault_anon 3\ntotal_workingset_refault_file 4\n"), &m); err != nil {
		t.Fatal(err)
	}
	if m != (MemoryStat{Anon: 20}) {
		t.Errorf("v1 memory.stat with refaults: %+v", m)
	}
	if err := parseMemoryStatV1([]byte("total_rss x\n"), &m); err == nil {
		t.Error("a malformed value was accepted")
	}
}

// TestHybridCPUAndPidsFromV1: on a hybrid host whose v2 root lacks the cpu
// and pids controllers, CPU limits, shares and throttling come from the v1
// cpu hierarchy and pids from the v1 pids hierarchy; usage still comes
// from v2's cpu.stat. Throttled time keeps v1's nanoseconds.
func TestHybridCPUAndPidsFromV1(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	files := map[string]string{
		"unified/cgroup.controllers":                  "\n",
		"unified/cpu.stat":                            "usage_usec 9\n",
		"unified/cgroup.procs":                        "1\n",
		"unified/pod/ctr/cgroup.procs":                "41\n",
		"unified/pod/ctr/cpu.stat":                    "usage_usec 7\nuser_usec 4\nsystem_usec 3\n",
		"unified/pod/free/cgroup.procs":               "42\n",
		"unified/pod/free/cpu.stat":                   "usage_usec 1\nuser_usec 1\nsystem_usec 0\n",
		"cpu/cpu.shares":                              "1024\n",
		"cpu/cpu.cfs_quota_us":                        "-1\n",
		"cpu/cpu.cfs_period_us":                       "100000\n",
		"cpu/cpu.stat":                                "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
		"cpu/pod/ctr/cpu.shares":                      "102\n",
		"cpu/pod/ctr/cpu.cfs_quota_us":                "10000\n",
		"cpu/pod/ctr/cpu.cfs_period_us":               "100000\n",
		"cpu/pod/ctr/cpu.stat":                        "nr_periods 56\nnr_throttled 31\nthrottled_time 1942194316\nnr_bursts 2\nburst_time 5000\n",
		"cpu/pod/free/cpu.shares":                     "2\n",
		"cpu/pod/free/cpu.cfs_quota_us":               "-1\n",
		"cpu/pod/free/cpu.cfs_period_us":              "100000\n",
		"cpu/pod/free/cpu.stat":                       "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
		"pids/tasks":                                  "1\n",
		"pids/pod/ctr/pids.current":                   "7\n",
		"pids/pod/ctr/pids.max":                       "max\n",
		"pids/pod/free/pids.current":                  "1\n",
		"pids/pod/free/pids.max":                      "32768\n",
		"memory/memory.usage_in_bytes":                "1\n",
		"memory/pod/ctr/memory.usage_in_bytes":        "4096\n",
		"memory/pod/ctr/memory.memsw.limit_in_bytes":  "9223372036854771712\n",
		"memory/pod/free/memory.memsw.limit_in_bytes": "67108864\n",
	}
	writeFiles(t, base, files)
	fs, err := NewFS(filepath.Join(base, "unified"))
	if err != nil {
		t.Fatal(err)
	}
	for ctrl, want := range map[string]string{"memory": "memory", "cpu": "cpu", "pids": "pids", "io": ""} {
		if want != "" {
			want = filepath.Join(base, want)
		}
		if got := fs.V1(ctrl); got != want {
			t.Errorf("V1(%q) = %q, want %q", ctrl, got, want)
		}
	}
	if !fs.CPUFromV1() {
		t.Error("CPUFromV1 = false")
	}

	want := Files(FileCgroupProcs, FileCPUStat, FileCPUStatV1, FileCPUMax, FileCPUPeriodV1, FileCPUWeight, FilePidsCurrent, FilePidsMax, FileMemorySwapMax)
	cases := []struct {
		path string
		want Stats
	}{
		{"/pod/ctr", Stats{
			Present:     want,
			CPU:         CPUStat{UsageUsec: 7, UserUsec: 4, SystemUsec: 3, NrPeriods: 56, NrThrottled: 31, ThrottledUsec: 1942194, ThrottledNsec: 1942194316, NrBursts: 2, BurstUsec: 5, BurstNsec: 5000},
			CPUMax:      CPUMax{Quota: 10000, HasQuota: true, Period: 100000},
			CPUShares:   102,
			PidsCurrent: Value{V: 7},
			PidsMax:     Value{Max: true},
			SwapMax:     Value{Max: true},
		}},
		{"/pod/free", Stats{
			Present:     want,
			CPU:         CPUStat{UsageUsec: 1, UserUsec: 1},
			CPUMax:      CPUMax{Period: 100000},
			CPUShares:   2,
			PidsCurrent: Value{V: 1},
			PidsMax:     Value{V: 32768},
			SwapMax:     Value{V: 67108864},
		}},
	}
	for i, c := range cases {
		g := fs.Open(c.path, uint64(i+1), NewBudget(100))
		var buf []byte
		var st Stats
		if err := g.Read(want, want, &buf, &st); err != nil {
			t.Fatalf("%s: %v", c.path, err)
		}
		got := Stats{Present: st.Present, CPU: st.CPU, CPUMax: st.CPUMax, CPUWeight: st.CPUWeight, CPUShares: st.CPUShares,
			PidsCurrent: st.PidsCurrent, PidsMax: st.PidsMax, SwapMax: st.SwapMax}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%s: -want +got:\n%s", c.path, diff)
		}
		if s := st.CPU.ThrottledSeconds(); i == 0 && s != 1.942194316 {
			t.Errorf("%s: ThrottledSeconds = %v, want 1.942194316 (v1's nanoseconds)", c.path, s)
		}
		g.Close()
	}

	// The root: v1's cpu root has every cpu file (no quota), the pids root
	// no pids files; nothing is an error.
	root := fs.Open("/", 9, nil)
	defer root.Close()
	var buf []byte
	var st Stats
	if err := root.Read(want, 0, &buf, &st); err != nil {
		t.Fatal(err)
	}
	if got, w := st.Present, want&^Files(FilePidsCurrent, FilePidsMax, FileMemorySwapMax); got != w || st.CPUMax != (CPUMax{Period: 100000}) || st.CPUShares != 1024 {
		t.Errorf("root present %v (want %v), cpu.max %+v, shares %d", got, w, st.CPUMax, st.CPUShares)
	}

	// Malformed v1 files are errors naming the v1 file; the rest is read.
	for name, content := range map[string]string{
		"cpu/pod/ctr/cpu.cfs_quota_us": "ten\n",
		"cpu/pod/ctr/cpu.stat":         "nr_periods x\n",
	} {
		if err := os.WriteFile(filepath.Join(base, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	g := fs.Open("/pod/ctr", 10, nil)
	defer g.Close()
	st = Stats{}
	err = g.Read(want, 0, &buf, &st)
	for _, name := range []string{"cpu/pod/ctr/cpu.cfs_quota_us", "cpu/pod/ctr/cpu.stat"} {
		if err == nil || !strings.Contains(err.Error(), filepath.Join(base, name)) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
	if got, w := st.Present, want&^Files(FileCPUMax, FileCPUStatV1); got != w {
		t.Errorf("present %v with malformed files, want %v", got, w)
	}
}

// TestNoV1FilesOnV2: a cgroup v2 host has none of the files only v1 has,
// and does not look for them.
func TestNoV1FilesOnV2(t *testing.T) {
	t.Parallel()
	base := hybridTree(t)
	fs, err := NewFS(filepath.Join(base, "unified"))
	if err != nil {
		t.Fatal(err)
	}
	if fs.CPUFromV1() || fs.V1("pids") != "" {
		t.Fatalf("cpu %q, pids %q from v1 with both in v2", fs.V1("cpu"), fs.V1("pids"))
	}
	g := fs.Open("/pod/ctr", 1, nil)
	defer g.Close()
	if g.absent&v1OnlyFiles != v1OnlyFiles {
		t.Errorf("absent %v, want the v1-only files", g.absent)
	}
}
