package node

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

func TestUnameGolden(t *testing.T) {
	t.Parallel()
	c := newUnameCollector(func() (unameInfo, error) {
		return unameInfo{
			SysName:    "Linux",
			Release:    "6.8.0-1015-aws",
			Version:    "#16-Ubuntu SMP Mon Aug 19 19:38:17 UTC 2024",
			Machine:    "x86_64",
			NodeName:   "ip-10-0-12-34.eu-west-1.compute.internal",
			DomainName: "(none)",
		}, nil
	})
	collectortest.CompareCollectorGolden(t, c, filepath.Join("testdata", "uname/fixed.golden.prom"))
}

func TestUnameInvalidUTF8(t *testing.T) {
	t.Parallel()
	c := newUnameCollector(func() (unameInfo, error) {
		return unameInfo{SysName: "Linux", NodeName: "host\xff"}, nil
	})
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if want := `nodename="host` + "\uFFFD" + `"`; !bytes.Contains(out, []byte(want)) {
		t.Errorf("want %s in\n%s", want, out)
	}
}

func TestUnameError(t *testing.T) {
	t.Parallel()
	boom := errors.New("uname: operation not permitted")
	c := newUnameCollector(func() (unameInfo, error) { return unameInfo{}, boom })
	if out, err := collectortest.Exposition(t, c); !errors.Is(err, boom) || len(out) != 0 {
		t.Errorf("want the syscall error and no output, got %v and %q", err, out)
	}
}

// TestUnameRegistrationUsesSyscall: the registered collector serves this
// host's kernel.
func TestUnameRegistrationUsesSyscall(t *testing.T) {
	t.Parallel()
	c, err := collectortest.Build(t, "uname", collectortest.TempEnv(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`sysname="Linux"`)) {
		t.Errorf("want sysname Linux:\n%s", out)
	}
}
