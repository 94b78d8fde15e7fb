// Package quotacgroup makes cgroups with a CPU quota and starts processes
// in them: the shipped DaemonSet and unit run the agent under a quota of
// half a CPU, and the end-to-end tests and hack/perf run it so on this
// host. It needs root and a cpu controller: cgroup v1's, or v2's
// delegated by the root cgroup.
package quotacgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// period is the CFS period the quotas are given in, µs (the kernel's and
// Kubernetes' default).
const period = 100_000

// ErrUnsupported says that no cgroup with a CPU quota can be made here.
var ErrUnsupported = errors.New("no cpu controller to set a quota with")

// Cgroup is a cgroup made with a CPU quota.
type Cgroup struct {
	dir string
}

// New makes a cgroup whose processes may use cpus CPUs (quota per
// period), under a name of its own; Remove removes it again once its
// processes have ended.
func New(cpus float64) (*Cgroup, error) {
	if cpus <= 0 {
		return nil, fmt.Errorf("a quota of %v CPUs", cpus)
	}
	quota := int(cpus * period)
	var parent string
	var files [][2]string
	switch {
	case exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
		parent = "/sys/fs/cgroup/cpu"
		files = [][2]string{{"cpu.cfs_period_us", strconv.Itoa(period)}, {"cpu.cfs_quota_us", strconv.Itoa(quota)}}
	case exists("/sys/fs/cgroup/cgroup.subtree_control"):
		b, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control")
		if err != nil {
			return nil, err
		}
		if !slices.Contains(strings.Fields(string(b)), "cpu") {
			return nil, fmt.Errorf("%w: the cgroup v2 root does not delegate cpu", ErrUnsupported)
		}
		parent = "/sys/fs/cgroup"
		files = [][2]string{{"cpu.max", fmt.Sprintf("%d %d", quota, period)}}
	default:
		return nil, ErrUnsupported
	}
	dir, err := os.MkdirTemp(parent, "nodeagent-quota-") // a mkdir makes a cgroup
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	c := &Cgroup{dir: dir}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0o644); err != nil {
			_ = c.Remove()
			return nil, err
		}
	}
	return c, nil
}

// Dir is the cgroup's directory.
func (c *Cgroup) Dir() string { return c.dir }

// Command runs bin with args in the cgroup from its first instruction (a
// shell moves itself there, then execs bin, so the process ID is bin's):
// the Go runtime reads its quota at start.
func (c *Cgroup) Command(bin string, args ...string) *exec.Cmd {
	return exec.Command("/bin/sh", append([]string{"-c", `echo $$ > "$0/cgroup.procs" && exec "$@"`, c.dir, bin}, args...)...)
}

// Remove removes the cgroup; its processes must have ended.
func (c *Cgroup) Remove() error { return os.Remove(c.dir) }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
