package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeFiles writes files (names relative to dir, directories made as
// needed) below dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var leafFiles = map[string]string{
	"cgroup.procs":        "41\n42\n",
	"cpu.stat":            "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 10\nnr_throttled 2\nthrottled_usec 5000\nnr_bursts 4\nburst_usec 700\n",
	"cpu.max":             "50000 100000\n",
	"cpu.weight":          "79\n",
	"cpu.pressure":        "some avg10=0.00 avg60=0.00 avg300=0.00 total=11\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=7\n",
	"memory.current":      "10485760\n",
	"memory.stat":         "anon 6291456\nfile 4194304\nfile_mapped 1048576\nfile_dirty 8192\nfile_writeback 4096\nactive_file 2097152\ninactive_file 2097152\nworkingset_refault_anon 5\nworkingset_refault_file 6\npgscan 70\npgsteal 60\npgfault 100\npgmajfault 3\n",
	"memory.peak":         "20971520\n",
	"memory.max":          "max\n",
	"memory.min":          "0\n",
	"memory.swap.current": "0\n",
	"memory.swap.max":     "0\n",
	"memory.events":       "low 0\nhigh 9\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n",
	"memory.pressure":     "some avg10=0.00 avg60=0.00 avg300=0.00 total=21\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=13\n",
	"io.stat":             "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
	"io.pressure":         "some avg10=0.00 avg60=0.00 avg300=0.00 total=31\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=17\n",
	"pids.current":        "3\n",
	"pids.max":            "max\n",
}

// leafGroup opens a Group over a fixture cgroup with every file, and
// returns the root of the fixture too.
func leafGroup(t *testing.T, budget *Budget) (*Group, string) {
	t.Helper()
	root := mkTree(t)
	writeFiles(t, filepath.Join(root, "leaf"), leafFiles)
	fs, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return fs.Open("/leaf", 1, budget), root
}

func TestGroupRead(t *testing.T) {
	t.Parallel()
	budget := NewBudget(100)
	g, root := leafGroup(t, budget)
	var buf []byte
	var st Stats
	if err := g.Read(AllFiles, AllFiles, &buf, &st); err != nil {
		t.Fatal(err)
	}
	want := Stats{
		Present:       AllFiles,
		Procs:         Procs{Count: 2, FirstPID: 41},
		CPU:           CPUStat{UsageUsec: 3000000, UserUsec: 2000000, SystemUsec: 1000000, NrPeriods: 10, NrThrottled: 2, ThrottledUsec: 5000, NrBursts: 4, BurstUsec: 700},
		CPUMax:        CPUMax{Quota: 50000, HasQuota: true, Period: 100000},
		CPUWeight:     Value{V: 79},
		CPUPressure:   Pressure{SomeTotal: 11, FullTotal: 7, HasFull: true},
		MemoryCurrent: Value{V: 10485760},
		Memory: MemoryStat{Anon: 6291456, File: 4194304, FileMapped: 1048576, ActiveFile: 2097152, InactiveFile: 2097152, PgFault: 100, PgMajFault: 3,
			V2Keys:    KeyFileDirty | KeyFileWriteback | KeyWorkingsetRefaultAnon | KeyWorkingsetRefaultFile | KeyPgScan | KeyPgSteal,
			FileDirty: 8192, FileWriteback: 4096, WorkingsetRefaultAnon: 5, WorkingsetRefaultFile: 6, PgScan: 70, PgSteal: 60},
		MemoryPeak:     Value{V: 20971520},
		MemoryMax:      Value{Max: true},
		MemoryMin:      Value{},
		SwapCurrent:    Value{},
		SwapMax:        Value{},
		MemoryEvents:   MemoryEvents{High: 9, Max: 1, OOM: 1, OOMKill: 1},
		MemoryPressure: Pressure{SomeTotal: 21, FullTotal: 13, HasFull: true},
		IO:             []IOStat{{Major: 254, RBytes: 4096, WBytes: 8192, RIOs: 1, WIOs: 2}},
		IOPressure:     Pressure{SomeTotal: 31, FullTotal: 17, HasFull: true},
		PidsCurrent:    Value{V: 3},
		PidsMax:        Value{Max: true},
	}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	// One per file of a v2 cgroup: the files only v1 has were never
	// opened.
	if got, want := budget.Open(), len(AllFiles.Names()); got != want {
		t.Errorf("budget holds %d descriptors, want %d", got, want)
	}

	// A cached descriptor is re-read from offset 0.
	if err := os.WriteFile(filepath.Join(root, "leaf", "cpu.stat"), []byte("usage_usec 4000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.Read(Files(FileCPUStat), AllFiles, &buf, &st); err != nil {
		t.Fatal(err)
	}
	if st.CPU.UsageUsec != 4000000 || st.Present != AllFiles {
		t.Errorf("re-read: %+v present %v", st.CPU, st.Present)
	}
	if st.MemoryCurrent.V != 10485760 {
		t.Errorf("a file not re-read lost its earlier value: %+v", st.MemoryCurrent)
	}
	g.Close()
	if got := budget.Open(); got != 0 {
		t.Errorf("after Close the budget holds %d descriptors", got)
	}
}

func TestGroupReadAbsentAndBad(t *testing.T) {
	t.Parallel()
	root := mkTree(t)
	writeFiles(t, filepath.Join(root, "svc"), map[string]string{
		"cgroup.procs": "1\n",
		"cpu.stat":     "usage_usec 5\n",
		"memory.stat":  "anon 1\nfile\n", // truncated
		"io.stat":      "garbage\n",
		"cpu.max":      "50000\n",
	})
	fs, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	g := fs.Open("/svc", 1, nil)
	var buf []byte
	var st Stats
	err = g.Read(AllFiles, AllFiles, &buf, &st)
	if err == nil {
		t.Fatal("want errors for memory.stat, io.stat and cpu.max")
	}
	for _, f := range []string{"svc/memory.stat", "svc/io.stat", "svc/cpu.max"} {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error does not name %s: %v", f, err)
		}
	}
	if !errors.Is(err, ErrParse) || errors.Is(err, ErrVanished) {
		t.Errorf("err = %v, want ErrParse only", err)
	}
	if want := Files(FileCgroupProcs, FileCPUStat); st.Present != want {
		t.Errorf("present %v, want %v", st.Present, want)
	}
	if st.CPU.UsageUsec != 5 {
		t.Errorf("cpu.stat not served: %+v", st.CPU)
	}
	// Absent files are remembered: creating one later is not noticed by
	// this Group (cgroups do not grow control files once made).
	writeFiles(t, filepath.Join(root, "svc"), map[string]string{"pids.current": "3\n"})
	_ = g.Read(Files(FilePidsCurrent), AllFiles, &buf, &st)
	if st.Present.Has(FilePidsCurrent) {
		t.Error("a file absent at first read was read later")
	}
}

func TestGroupVanished(t *testing.T) {
	t.Parallel()
	root := mkTree(t)
	writeFiles(t, filepath.Join(root, "gone"), leafFiles)
	fs, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	g := fs.Open("/gone", 1, nil)
	if err := os.RemoveAll(filepath.Join(root, "gone")); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	var st Stats
	if err := g.Read(AllFiles, AllFiles, &buf, &st); !errors.Is(err, ErrVanished) {
		t.Errorf("err = %v, want ErrVanished", err)
	}
}

func TestGroupLargeProcs(t *testing.T) {
	t.Parallel()
	root := mkTree(t)
	var b strings.Builder
	for pid := 1; pid <= 5000; pid++ {
		fmt.Fprintf(&b, "%d\n", pid)
	}
	writeFiles(t, filepath.Join(root, "big"), map[string]string{"cgroup.procs": b.String(), "cpu.stat": "usage_usec 1\n"})
	fs, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64) // forces the buffer to grow
	var st Stats
	if err := fs.Open("/big", 1, NewBudget(10)).Read(Files(FileCgroupProcs), AllFiles, &buf, &st); err != nil {
		t.Fatal(err)
	}
	if st.Procs != (Procs{Count: 5000, FirstPID: 1}) {
		t.Errorf("procs = %+v", st.Procs)
	}
}

// TestGroupVanishedKernel removes a real cgroup whose files are open: reads
// of the cached descriptors fail with ENODEV, which must read as vanished.
func TestGroupVanishedKernel(t *testing.T) {
	t.Parallel()
	mount := writableCgroup2(t)
	dir, err := os.MkdirTemp(mount, "nodeagent-test-vanish-")
	if err != nil {
		t.Skipf("cannot create a cgroup under %s: %v", mount, err)
	}
	defer os.Remove(dir)
	fs, err := NewFS(mount)
	if err != nil {
		t.Fatal(err)
	}
	g := fs.Open("/"+filepath.Base(dir), 1, NewBudget(100))
	defer g.Close()
	var buf []byte
	var st Stats
	if err := g.Read(AllFiles, AllFiles, &buf, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Present.Has(FileCPUStat) || !st.Present.Has(FileCgroupProcs) {
		t.Fatalf("core files not read: %v", st.Present)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := g.Read(AllFiles, AllFiles, &buf, &st); !errors.Is(err, ErrVanished) {
		t.Errorf("err = %v, want ErrVanished", err)
	}
}

// TestGroupProcsKernel reads a real cgroup.procs longer than the kernel's
// one-page seq_file buffer, which the kernel hands out a page at a time:
// the read must go on past the first short read (seqEOFBelow) and count
// every process, with a buffer larger than the file and with one smaller.
func TestGroupProcsKernel(t *testing.T) {
	t.Parallel()
	mount := writableCgroup2(t)
	dir, err := os.MkdirTemp(mount, "nodeagent-test-procs-")
	if err != nil {
		t.Skipf("cannot create a cgroup under %s: %v", mount, err)
	}
	t.Cleanup(func() {
		// The processes take a moment to leave the cgroup after the kill.
		for range 100 {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", dir)
	})

	// A shell that waits until it is in the cgroup, then starts its
	// children there: 1,101 PIDs are more than a page of text even if
	// they were the smallest a PID namespace hands out (1 to 1,101:
	// 4,398 bytes with their newlines). 800 were not: 4-digit PIDs made
	// 4,005 bytes.
	const children = 1100
	sh := exec.Command("sh", "-c", `read _; i=0; while [ $i -lt `+strconv.Itoa(children)+` ]; do sleep 300 & i=$((i+1)); done; echo ready; wait`)
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sh.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-sh.Process.Pid, syscall.SIGKILL)
		_ = sh.Wait()
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(sh.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("shell said %q, %v", line, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) <= 4096 {
		t.Fatalf("cgroup.procs holds %d bytes; the test needs more than a page", len(raw))
	}

	fs, err := NewFS(mount)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{64 << 10, 100} {
		g := fs.Open("/"+filepath.Base(dir), 1, NewBudget(10))
		buf := make([]byte, size)
		var st Stats
		for read := range 2 { // the second from the kept descriptor
			if err := g.Read(Files(FileCgroupProcs), AllFiles, &buf, &st); err != nil {
				t.Fatal(err)
			}
			if st.Procs.Count != children+1 || st.Procs.FirstPID != sh.Process.Pid {
				t.Errorf("buffer of %d bytes, read %d: procs = %+v, want %d processes, the first %d", size, read, st.Procs, children+1, sh.Process.Pid)
			}
		}
		g.Close()
	}
}

// writableCgroup2 returns a cgroup2 mount this test may create cgroups in,
// or skips.
func writableCgroup2(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	for _, m := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if isCgroup2(m) {
			return m
		}
	}
	t.Skip("no cgroup2 mount")
	return ""
}

func TestGroupCachesOnlyAskedFiles(t *testing.T) {
	t.Parallel()
	budget := NewBudget(100)
	g, _ := leafGroup(t, budget)
	defer g.Close()
	var buf []byte
	var st Stats
	if err := g.Read(AllFiles, Files(FileCPUStat, FileMemoryStat), &buf, &st); err != nil {
		t.Fatal(err)
	}
	if st.Present != AllFiles || budget.Open() != 2 {
		t.Errorf("present %v, %d descriptors kept; want all files read and 2 kept", st.Present, budget.Open())
	}
}

func TestBudget(t *testing.T) {
	t.Parallel()
	var none *Budget
	if none.acquire() {
		t.Error("a nil budget gave a descriptor")
	}
	if NewBudget(0).acquire() {
		t.Error("a budget of 0 gave a descriptor")
	}
	b := NewBudget(2)
	for i, want := range []bool{true, true, false, false} {
		if got := b.acquire(); got != want {
			t.Errorf("acquire %d = %v, want %v", i+1, got, want)
		}
	}
	if b.Open() != 2 {
		t.Errorf("%d held after a refused acquire, want 2", b.Open())
	}
	b.release()
	if !b.acquire() || b.acquire() || b.Open() != 2 {
		t.Errorf("after a release: %d held, want one more given and then refused", b.Open())
	}
}

// TestGroupBeyondBudget: files beyond a spent budget are still read (with
// open+read+close), and closing a group gives its descriptors back.
func TestGroupBeyondBudget(t *testing.T) {
	t.Parallel()
	budget := NewBudget(3)
	first, _ := leafGroup(t, budget)
	second, _ := leafGroup(t, budget)
	var buf []byte
	for i, g := range []*Group{first, second} {
		var st Stats
		if err := g.Read(AllFiles, AllFiles, &buf, &st); err != nil {
			t.Fatal(err)
		}
		if st.Present != AllFiles || st.CPU.UsageUsec != 3000000 || st.PidsCurrent.V != 3 {
			t.Errorf("group %d: present %v, cpu %+v, pids %+v; want every file read", i+1, st.Present, st.CPU, st.PidsCurrent)
		}
		if budget.Open() != 3 {
			t.Errorf("after group %d: %d descriptors held, want the budget's 3", i+1, budget.Open())
		}
	}
	first.Close()
	if budget.Open() != 0 {
		t.Errorf("%d descriptors held after the group that kept them closed, want 0", budget.Open())
	}
	second.Close()
}

// TestGroupRelease: released files give their descriptors back to the
// budget and are read again (and kept) when asked for.
func TestGroupRelease(t *testing.T) {
	t.Parallel()
	budget := NewBudget(100)
	g, _ := leafGroup(t, budget)
	defer g.Close()
	var buf []byte
	var st Stats
	if err := g.Read(AllFiles, AllFiles, &buf, &st); err != nil {
		t.Fatal(err)
	}
	kept := budget.Open()
	both := Files(FileMemorySwapCurrent, FileMemoryEvents)
	g.Release(both)
	if budget.Open() != kept-2 {
		t.Errorf("%d descriptors after releasing two of %d", budget.Open(), kept)
	}
	g.Release(both) // nothing more to give back
	if budget.Open() != kept-2 {
		t.Errorf("%d descriptors after releasing the same files again, want %d", budget.Open(), kept-2)
	}
	if err := g.Read(both, AllFiles, &buf, &st); err != nil || st.Present&both != both {
		t.Fatalf("reading the released files again: present %v, err %v", st.Present, err)
	}
	if budget.Open() != kept {
		t.Errorf("%d descriptors after reading them again, want %d", budget.Open(), kept)
	}
}
