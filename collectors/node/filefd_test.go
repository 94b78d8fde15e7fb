package node

import (
	"strings"
	"testing"
)

// Golden cases: testdata/filefd (good, malformed, missing).

func TestParseFileNr(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in         string
		alloc, max float64
		wantErr    string
	}{
		{"9632\t0\t9223372036854775807\n", 9632, 9223372036854775807, ""},
		{"1 0 2", 1, 2, ""},
		{"9632\t0\n", 0, 0, "want 3 numbers"},
		{"", 0, 0, "want 3 numbers"},
		{"x\t0\t1\n", 0, 0, "allocated"},
		{"1\t0\tmany\n", 0, 0, "maximum"},
	} {
		a, m, err := parseFileNr([]byte(tc.in))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: want an error containing %q, got %v", tc.in, tc.wantErr, err)
			}
			continue
		}
		if err != nil || a != tc.alloc || m != tc.max {
			t.Errorf("%q: got %v, %v, %v; want %v, %v", tc.in, a, m, err, tc.alloc, tc.max)
		}
	}
}

func FuzzParseFileNr(f *testing.F) {
	f.Add([]byte("9632\t0\t9223372036854775807\n"))
	f.Add([]byte("1 2"))
	f.Add([]byte("\t\t\t"))
	f.Fuzz(func(t *testing.T, in []byte) {
		a, m, err := parseFileNr(in)
		if err != nil && (a != 0 || m != 0) {
			t.Errorf("an error with values %v, %v", a, m)
		}
	})
}
