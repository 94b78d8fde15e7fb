package node

import (
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (enforcing, permissive with enforcing configured, no
// config file, disabled, no policy loaded, malformed enforce) are golden
// cases in testdata/selinux.

func TestParseSELinuxConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     int
	}{
		{"enforcing", "SELINUX=enforcing\nSELINUXTYPE=targeted\n", selinuxEnforcing},
		{"permissive", "# comment\n\nSELINUX=permissive\n", selinuxPermissive},
		{"disabled", "SELINUX=disabled\n", selinuxDisabled},
		{"quoted", `SELINUX="enforcing"` + "\n", selinuxEnforcing},
		{"indented", "   SELINUX=permissive  \n", selinuxPermissive},
		{"semicolon comment", "; SELINUX=enforcing\nSELINUX=permissive\n", selinuxPermissive},
		{"first one wins", "SELINUX=permissive\nSELINUX=enforcing\n", selinuxPermissive},
		{"spaces around = do not count", "SELINUX = enforcing\n", selinuxDisabled},
		{"SELINUXTYPE is not SELINUX", "SELINUXTYPE=enforcing\n", selinuxDisabled},
		{"upper case value", "SELINUX=Enforcing\n", selinuxDisabled},
		{"empty", "", selinuxDisabled},
	} {
		if got := parseSELinuxConfig([]byte(tc.in)); got != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, got, tc.want)
		}
	}
}

func FuzzParseSELinuxConfig(f *testing.F) {
	f.Add([]byte("SELINUX=enforcing\nSELINUXTYPE=targeted\n"))
	f.Add([]byte("# x\n;y\nSELINUX=\"permissive\"\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		switch got := parseSELinuxConfig(b); got {
		case selinuxDisabled, selinuxPermissive, selinuxEnforcing:
		default:
			t.Errorf("mode %d", got)
		}
	})
}

// TestNodeExporterConformanceHostSELinux compares with node_exporter, which
// reads fixed paths, on this machine.
func TestNodeExporterConformanceHostSELinux(t *testing.T) {
	t.Parallel()
	collectortest.CompareOnHost(t, "selinux", collectortest.HostComparison{})
}
