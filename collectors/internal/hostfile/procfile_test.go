package hostfile

import (
	"bytes"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
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

// ReadFunc hands fn the kept buffer (no copy), passes fn's error through,
// and reads /proc/1/mountinfo, a file larger than one page, whole.
func TestProcFileReadFunc(t *testing.T) {
	const p = "/proc/self/mountinfo"
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s: %v", p, err)
	}
	f := NewProcFile(p)
	defer f.Close()
	var got []byte
	if err := f.ReadFunc(func(b []byte) error { got = append(got, b...); return nil }); err != nil {
		t.Fatal(err)
	}
	byPath, err := ReadProcFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, byPath) || !Whole(got) {
		t.Errorf("ReadFunc gave %d bytes (whole %v), by path %d", len(got), Whole(got), len(byPath))
	}
	stop := errors.New("stop")
	if err := f.ReadFunc(func([]byte) error { return stop }); err != stop {
		t.Errorf("fn's error: got %v", err)
	}
	if Whole(make([]byte, procMaxFileBytes)) {
		t.Error("content at the size bound counted as whole")
	}
}

// ParseFloat gives what strconv.ParseFloat gives, bit for bit, integers
// and everything else.
func TestParseFloat(t *testing.T) {
	for _, in := range []string{"0", "-0", "+7", "42", "18446744073709551615", "9999999999999999999", "99999999999999999999",
		"9007199254740993", "-9223372036854775808", "1e308", "0x1p3", "NaN", "-Inf", "1.5", "", "-", "+", "12a", " 1", "1_000"} {
		want, wantErr := strconv.ParseFloat(in, 64)
		got, err := ParseFloat([]byte(in))
		if (err != nil) != (wantErr != nil) || math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("ParseFloat(%q) = %v, %v; strconv: %v, %v", in, got, err, want, wantErr)
		}
	}
}

func FuzzParseFloat(f *testing.F) {
	f.Add([]byte("123"))
	f.Add([]byte("-1.5e3"))
	f.Fuzz(func(t *testing.T, in []byte) {
		want, wantErr := strconv.ParseFloat(string(in), 64)
		got, err := ParseFloat(in)
		if (err != nil) != (wantErr != nil) || math.Float64bits(got) != math.Float64bits(want) && !(math.IsNaN(got) && math.IsNaN(want)) {
			t.Errorf("ParseFloat(%q) = %v, %v; strconv: %v, %v", in, got, err, want, wantErr)
		}
	})
}

// Fields splits as bytes.Fields does on ASCII input.
func TestFields(t *testing.T) {
	for _, in := range []string{"", " ", "a", " a  b\t c\r\n", "Tcp: 1 2 -3", "\v\fx\fy "} {
		var buf [2][]byte
		got := Fields([]byte(in), buf[:0])
		want := bytes.Fields([]byte(in))
		if len(got) != len(want) {
			t.Errorf("Fields(%q) = %q, want %q", in, got, want)
			continue
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("Fields(%q) = %q, want %q", in, got, want)
			}
		}
	}
}
