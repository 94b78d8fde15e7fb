package hostfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// keys are the first words of each line: what does not move between two
// reads of a counter file. file-nr is one line of numbers, of which the
// last, the maximum, does not move.
func keys(path string, b []byte) [][]byte {
	var out [][]byte
	for line := range bytes.Lines(b) {
		if f := bytes.Fields(line); len(f) > 0 {
			if path == "/proc/sys/fs/file-nr" {
				out = append(out, f[len(f)-1])
				continue
			}
			out = append(out, f[0])
		}
	}
	return out
}

// TestProcFileOnHost reads /proc files through kept descriptors, twice
// (the second a pread of the descriptor kept from the first), and by path:
// the same lines with the same keys.
func TestProcFileOnHost(t *testing.T) {
	for _, p := range []string{"/proc/vmstat", "/proc/net/netstat", "/proc/net/snmp", "/proc/sys/fs/file-nr"} {
		if _, err := os.Stat(p); err != nil {
			t.Logf("%s: %v; skipped", p, err)
			continue
		}
		f := NewProcFile(p)
		for round := range 2 {
			kept, err := f.Read()
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			byPath, err := ReadProcFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(kept) == 0 {
				t.Errorf("round %d: %s read empty", round, p)
			}
			if !slicesEqual(keys(p, kept), keys(p, byPath)) {
				t.Errorf("round %d: %s through a kept descriptor has other lines than by path:\n%s\n---\n%s", round, p, kept, byPath)
			}
		}
		if f.fd < 0 || !f.keep {
			t.Errorf("%s: descriptor not kept on procfs", p)
		}
		f.Close()
	}
}

func slicesEqual(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestProcFileFixture: a file outside procfs is read by path each time,
// so that one replaced by rename is seen; a missing one is
// fs.ErrNotExist naming the file.
func TestProcFileFixture(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "vmstat")
	if err := os.WriteFile(p, []byte("pgfault 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := NewProcFile(p)
	if b, err := f.Read(); err != nil || string(b) != "pgfault 1\n" {
		t.Fatalf("first read: %q, %v", b, err)
	}
	tmp := filepath.Join(dir, "new")
	if err := os.WriteFile(tmp, []byte("pgfault 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	if b, err := f.Read(); err != nil || string(b) != "pgfault 2\n" {
		t.Errorf("after the file was replaced: %q, %v; want the new content", b, err)
	}
	_, err := NewProcFile(filepath.Join(dir, "absent")).Read()
	if !errors.Is(err, fs.ErrNotExist) || !bytes.Contains([]byte(err.Error()), []byte("absent")) {
		t.Errorf("missing file: %v, want fs.ErrNotExist naming it", err)
	}
}
