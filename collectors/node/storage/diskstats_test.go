package storage

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// Golden cases: testdata/diskstats (good, include, no-udev, old-kernel,
// malformed).

// TestDiskstatsUdevKeptUntilReplaced: a device's udev properties are read
// again only when its database file is another version of it (udevd
// writes a new file and renames it over the old one), and dropped when the
// file goes.
func TestDiskstatsUdevKeptUntilReplaced(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "diskstats/good")
	c := collectortest.MustBuildFixture(t, "diskstats", dir, "--collector.diskstats.device-include=^sda$")
	db := filepath.Join(dir, "udev", "b8:0")
	scrape := func() string { return collectortest.MustExposition(t, c) }
	info := func(got string) string {
		t.Helper()
		for _, l := range strings.Split(got, "\n") {
			if strings.HasPrefix(l, "node_disk_info{") {
				return l
			}
		}
		t.Fatalf("no node_disk_info in:\n%s", got)
		return ""
	}
	first := info(scrape())
	if !strings.Contains(first, `model="ST4000NM0035-1V4107"`) {
		t.Fatalf("the fixture's model is not served: %s", first)
	}
	orig, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}

	// The same file (inode, size, mtime): the kept properties.
	same := bytes.Replace(orig, []byte("ID_MODEL=ST4000NM0035-1V4107"), []byte("ID_MODEL=ST4000NM0035-XXXXXX"), 1)
	if err := os.WriteFile(db, same, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(db, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if got := info(scrape()); got != first {
		t.Errorf("an unchanged database file was read again:\n%s\nwant\n%s", got, first)
	}

	// A new version, written beside and renamed over it as udevd does.
	tmp := db + ".tmp"
	if err := os.WriteFile(tmp, bytes.Replace(orig, []byte("ID_MODEL=ST4000NM0035-1V4107"), []byte("ID_MODEL=Replaced-Model"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, db); err != nil {
		t.Fatal(err)
	}
	if got := info(scrape()); !strings.Contains(got, `model="Replaced-Model"`) {
		t.Errorf("a replaced database file was not read again: %s", got)
	}

	// The file gone: no udev labels, nothing kept.
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	if got := info(scrape()); strings.Contains(got, "Replaced-Model") || strings.Contains(got, "ZC1234AB") {
		t.Errorf("udev properties served after the database file went: %s", got)
	}
	if n := len(c.(*diskstatsCollector).udev); n != 0 {
		t.Errorf("%d database files kept after they went", n)
	}
}

func TestParseUdevData(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     map[string]string
	}{
		{"properties only", "S:disk/by-id/x\nE:ID_MODEL=Disk One\nW:8\nE:ID_SERIAL=abc=def\nG:systemd\n",
			map[string]string{"ID_MODEL": "Disk One", "ID_SERIAL": "abc=def"}},
		{"empty value", "E:DM_LV_LAYER=\n", map[string]string{"DM_LV_LAYER": ""}},
		{"no separator", "E:BROKEN\nE:OK=1", map[string]string{"OK": "1"}},
		{"empty file", "", map[string]string{}},
		{"invalid UTF-8 replaced", "E:ID_MODEL=a\xffb\n", map[string]string{"ID_MODEL": "a\uFFFDb"}},
	} {
		got, err := parseUdevData(strings.NewReader(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

func FuzzParseUdevData(f *testing.F) {
	f.Add([]byte("S:disk/by-id/x\nE:ID_MODEL=Disk One\nE:ID_ATA=1\n"))
	f.Add([]byte("E:=\nE:\xff=\xfe\n"))
	f.Add([]byte(strings.Repeat("E:K=v", 1000)))
	f.Fuzz(func(t *testing.T, in []byte) {
		props, err := parseUdevData(bytes.NewReader(in))
		if err != nil {
			return // a line longer than the scanner takes
		}
		for k, v := range props {
			if strings.Contains(k, "=") || strings.Contains(k, "\n") {
				t.Errorf("key %q holds a separator", k)
			}
			if !utf8.ValidString(v) {
				t.Errorf("value %q of %q is not valid UTF-8", v, k)
			}
		}
	})
}
