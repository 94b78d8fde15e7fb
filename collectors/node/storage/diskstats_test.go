package storage

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// Golden cases: testdata/diskstats (good, include, no-udev, old-kernel,
// malformed).

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
