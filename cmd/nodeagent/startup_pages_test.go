package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/procfs"
)

func TestStartupMappings(t *testing.T) {
	t.Parallel()
	const exe = "/usr/bin/nodeagent"
	perms := func(s string) *procfs.ProcMapPermissions {
		return &procfs.ProcMapPermissions{Read: s[0] == 'r', Write: s[1] == 'w', Execute: s[2] == 'x', Private: s[3] == 'p', Shared: s[3] == 's'}
	}
	m := func(start, end uintptr, p, path string) *procfs.ProcMap {
		return &procfs.ProcMap{StartAddr: start, EndAddr: end, Perms: perms(p), Pathname: path}
	}
	// A static Go executable's mappings, as /proc/self/maps lists them,
	// with what else a process may map.
	mappings := []*procfs.ProcMap{
		m(0x400000, 0xe16000, "r-xp", exe),        // code
		m(0xe16000, 0x1b9e000, "r--p", exe),       // read-only data, pclntab
		m(0x1b9e000, 0x1bf6000, "rw-p", exe),      // data: written since start
		m(0x1bf6000, 0x1c50000, "rw-p", ""),       // bss
		m(0xc000000000, 0xc004000000, "rw-p", ""), // the Go heap
		m(0x7f0000000000, 0x7f0000200000, "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6"),
		m(0x7f0000300000, 0x7f0000301000, "r--s", exe), // a shared mapping of the file
		m(0x7ffd00000000, 0x7ffd00002000, "r-xp", "[vdso]"),
		m(0x500000, 0x500000, "r--p", exe),                      // empty
		{StartAddr: 0x600000, EndAddr: 0x601000, Pathname: exe}, // no permissions parsed
	}
	want := []startupMapping{{0x400000, 0xe16000}, {0xe16000, 0x1b9e000}}
	if diff := cmp.Diff(want, startupMappings(mappings, exe), cmp.AllowUnexported(startupMapping{})); diff != "" {
		t.Errorf("startupMappings (-want +got):\n%s", diff)
	}
	if got := startupMappings(mappings, ""); len(got) != 0 {
		t.Errorf("startupMappings without an executable path: %v", got)
	}
	if got := startupMappings(mappings, exe+" (deleted)"); len(got) != 0 {
		t.Errorf("startupMappings of another path: %v", got)
	}
}

func TestWithAnonymousPages(t *testing.T) {
	t.Parallel()
	f, err := os.Open(filepath.Join("testdata", "smaps", "uprobe"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The executable's code (a breakpoint copied into one page), its
	// read-only data, and its data segment, which startupMappings never
	// asks for although it holds anonymous pages.
	ranges := []startupMapping{{0x400000, 0xe42000}, {0xe42000, 0x1984000}}
	got, err := withAnonymousPages(f, ranges)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[uintptr]bool{0x400000: true}; !maps.Equal(got, want) {
		t.Errorf("withAnonymousPages = %v, want %v", got, want)
	}

	for _, bad := range []string{"not smaps\n", "zz-00e42000 r-xp 00000000 fe:00 1 /x\n"} {
		if _, err := withAnonymousPages(strings.NewReader(bad), ranges); err == nil {
			t.Errorf("withAnonymousPages(%q): no error", bad)
		}
	}
}

// TestReleaseStartupPages releases this test binary's read-only pages:
// what it touches again is mapped back, and a data page written before
// keeps its value.
func TestReleaseStartupPages(t *testing.T) {
	written[0] = 42
	n, err := releaseStartupPages()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1<<20 {
		t.Errorf("released %d bytes of mappings, want the executable's code and read-only data", n)
	}
	if written[0] != 42 {
		t.Errorf("a written data page lost its value: %d", written[0])
	}
}

// written is in the data segment, which must never be released.
var written = [4096]byte{1}
