package collectors

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
)

func TestLoadavg(t *testing.T) {
	t.Parallel()
	env := fixtureEnv(t, "loadavg/good")
	compareGolden(t, newLoadavgCollector(env.Proc, env.Paths.ProcFS), "loadavg/good.prom")
}

func TestLoadavgMalformed(t *testing.T) {
	t.Parallel()
	env := fixtureEnv(t, "loadavg/malformed")
	out, err := exposition(t, newLoadavgCollector(env.Proc, env.Paths.ProcFS))
	if err == nil {
		t.Fatalf("want an error for a malformed loadavg, got output:\n%s", out)
	}
	if !strings.Contains(err.Error(), "loadavg/malformed/proc/loadavg") {
		t.Errorf("error %q does not name the file", err)
	}
	if len(out) != 0 {
		t.Errorf("want no output on error, got:\n%s", out)
	}
}

func TestLoadavgMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	proc, err := procfs.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exposition(t, newLoadavgCollector(proc, dir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("want a not-exist error when loadavg is missing, got %v", err)
	}
}
