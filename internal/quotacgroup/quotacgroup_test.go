package quotacgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCommandRunsUnderTheQuota: a process started with Command is in the
// cgroup, and the cgroup has the quota asked for.
func TestCommandRunsUnderTheQuota(t *testing.T) {
	c, err := New(0.5)
	if errors.Is(err, ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Remove(); err != nil {
			t.Error(err)
		}
	}()
	out, err := c.Command("/bin/cat", "/proc/self/cgroup").Output()
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(c.Dir())
	if !strings.Contains(string(out), "/"+name+"\n") {
		t.Errorf("the process' cgroups do not name %s:\n%s", name, out)
	}
	quota := filepath.Join(c.Dir(), "cpu.cfs_quota_us")
	want := strconv.Itoa(period / 2)
	if _, err := os.Stat(quota); err != nil {
		quota, want = filepath.Join(c.Dir(), "cpu.max"), strconv.Itoa(period/2)+" "+strconv.Itoa(period)
	}
	if b, err := os.ReadFile(quota); err != nil || strings.TrimSpace(string(b)) != want {
		t.Errorf("%s = %q, %v; want %q", quota, b, err, want)
	}
}

func TestNewRefusesNoQuota(t *testing.T) {
	if _, err := New(0); err == nil {
		t.Error("New(0) made a cgroup")
	}
}
