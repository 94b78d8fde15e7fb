package cgroup

import (
	"os"
	"path/filepath"
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
	for name, content := range files {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
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
// hierarchy's memory comes from /sys/fs/cgroup/memory, and the root's
// usage is read.
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
