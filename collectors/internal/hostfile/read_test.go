package hostfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSysfsAttr(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string { return writeTemp(t, dir, name, content) }
	long := strings.Repeat("x", sysfsReadLimit+100)
	for _, tc := range []struct {
		name, path, want string
		wantErr          error // matched with errors.Is; nil: no error
		errNames         bool  // the error names the path
	}{
		{name: "value", path: write("temp1_input", "46000\n"), want: "46000"},
		{name: "newlines cut, spaces kept", path: write("label", " Core 0 \n\n"), want: " Core 0 "},
		{name: "empty", path: write("empty", ""), want: ""},
		{name: "one read of at most a page", path: write("long", long), want: long[:sysfsReadLimit]},
		{name: "missing", path: filepath.Join(dir, "missing"), wantErr: fs.ErrNotExist, errNames: true},
		{name: "directory", path: dir, wantErr: errors.New("any"), errNames: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadSysfsAttr(tc.path)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("got %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("want an error, got %q", got)
			}
			if tc.wantErr == fs.ErrNotExist && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v is not fs.ErrNotExist", err)
			}
			if tc.errNames && !strings.Contains(err.Error(), tc.path) {
				t.Errorf("error %v does not name %s", err, tc.path)
			}
		})
	}
}

// TestReadSysfsAttrNoAllocation: the page read lives on the stack and no
// os.File is made; only the path's C string and the value are allocated.
func TestReadSysfsAttrNoAllocation(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates")
	}
	p := filepath.Join(t.TempDir(), "in0_input")
	if err := os.WriteFile(p, []byte("1200\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(50, func() {
		if _, err := ReadSysfsAttr(p); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("%v allocations per read, want at most 2 (the path for open(2), the value)", n)
	}
}

func TestReadUintFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string { return writeTemp(t, dir, name, content) }
	for _, tc := range []struct {
		name, path string
		want       uint64
		wantErr    string // "" for none
	}{
		{name: "counter", path: write("core_throttle_count", "42\n"), want: 42},
		{name: "spaces", path: write("ce_count", "  7 \n"), want: 7},
		{name: "largest", path: write("max", "18446744073709551615\n"), want: 18446744073709551615},
		{name: "not a number", path: write("nan", "lots\n"), wantErr: "parsing"},
		{name: "negative", path: write("neg", "-1\n"), wantErr: "parsing"},
		{name: "longer than a number", path: write("long", strings.Repeat("1", 100)), wantErr: "more than a number"},
		{name: "missing", path: filepath.Join(dir, "missing"), wantErr: "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadUintFile(tc.path)
			if tc.wantErr == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %d, %v; want %d", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.path) {
				t.Fatalf("got %d, %v; want an error naming %s and containing %q", got, err, tc.path, tc.wantErr)
			}
		})
	}
	if _, err := ReadUintFile(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: want fs.ErrNotExist, got %v", err)
	}
}

// writeTemp writes content to dir/name and returns its path.
func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
