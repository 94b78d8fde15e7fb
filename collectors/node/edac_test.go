package node

import (
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

// The fixture cases are golden cases in testdata/edac.

// FuzzEdacValues covers the two bits of parsing done here: counters and
// DIMM labels.
func FuzzEdacValues(f *testing.F) {
	for _, s := range []string{"7\n", " 0 ", "18446744073709551615", "-1", "CPU_SrcID#0_MC#0_Chan#0_DIMM#0\n", "mc#0csrow#1channel#0", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := hostfile.ParseUint([]byte(s)); err == nil && strings.TrimSpace(s) == "" {
			t.Errorf("parseUintValue(%q) = %d for blank input", s, v)
		}
		label := cleanEdacDimmLabel(s)
		if strings.Contains(label, "#") {
			t.Errorf("cleanEdacDimmLabel(%q) = %q keeps '#'", s, label)
		}
	})
}
