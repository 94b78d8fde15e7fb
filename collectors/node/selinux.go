package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "selinux",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) {
				return newSELinuxCollector(hostSELinux{
					selinuxfs: filepath.Join(env.Paths.SysFS, "fs/selinux"),
					label:     filepath.Join(env.Paths.ProcFS, "self/attr/current"),
					config:    filepath.Join(env.Paths.RootFS, "etc/selinux/config"),
				}), nil
			}
		},
	})
}

// SELinux modes as node_exporter reports them (go-selinux's values).
const (
	selinuxDisabled   = -1
	selinuxPermissive = 0
	selinuxEnforcing  = 1
)

// selinuxStatus is one reading of the host's SELinux state.
type selinuxStatus struct {
	enabled     bool
	configMode  int // SELINUX= of /etc/selinux/config: the mode at next boot
	currentMode int // /sys/fs/selinux/enforce
}

// selinuxReader reads the host's SELinux state. err reports a file that
// exists but cannot be understood; the status is still complete then, with
// the unreadable mode as selinuxDisabled, as node_exporter reports it.
type selinuxReader interface {
	status() (selinuxStatus, error)
}

// selinuxCollector serves node_selinux_* as node_exporter does.
type selinuxCollector struct {
	reader                           selinuxReader
	enabled, configMode, currentMode *prometheus.Desc
}

func newSELinuxCollector(r selinuxReader) *selinuxCollector {
	return &selinuxCollector{
		reader:      r,
		enabled:     prometheus.NewDesc("node_selinux_enabled", "SELinux is enabled, 1 is true, 0 is false", nil, nil),
		configMode:  prometheus.NewDesc("node_selinux_config_mode", "Configured SELinux enforcement mode", nil, nil),
		currentMode: prometheus.NewDesc("node_selinux_current_mode", "Current SELinux enforcement mode", nil, nil),
	}
}

func (c *selinuxCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	s, err := c.reader.status()
	if !s.enabled {
		ch <- prometheus.MustNewConstMetric(c.enabled, prometheus.GaugeValue, 0)
		return err
	}
	ch <- prometheus.MustNewConstMetric(c.enabled, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(c.configMode, prometheus.GaugeValue, float64(s.configMode))
	ch <- prometheus.MustNewConstMetric(c.currentMode, prometheus.GaugeValue, float64(s.currentMode))
	return err
}

// hostSELinux reads the state below --path.sysfs, --path.procfs and
// --path.rootfs. node_exporter's library reads fixed paths instead
// (/sys/fs/selinux, /proc/thread-self, /etc/selinux/config), which in a
// container are the container's: it reports SELinux disabled on enforcing
// hosts. Here the host's files decide, by the same rules.
type hostSELinux struct {
	selinuxfs string // <sysfs>/fs/selinux
	label     string // <procfs>/self/attr/current
	config    string // <rootfs>/etc/selinux/config
}

func (h hostSELinux) status() (selinuxStatus, error) {
	// SELinux is enabled when selinuxfs is mounted and a policy is loaded:
	// before the policy loads, every process runs as "kernel".
	enforce, err := os.ReadFile(filepath.Join(h.selinuxfs, "enforce"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return selinuxStatus{}, nil
		}
		return selinuxStatus{}, fmt.Errorf("reading %s/enforce: %w", h.selinuxfs, err)
	}
	if label, err := os.ReadFile(h.label); err == nil && string(bytes.TrimRight(label, "\x00\n")) == "kernel" {
		return selinuxStatus{}, nil
	}
	s := selinuxStatus{enabled: true, currentMode: selinuxDisabled, configMode: selinuxDisabled}
	var errs []error
	if v, err := strconv.Atoi(string(bytes.TrimSpace(enforce))); err == nil {
		s.currentMode = v
	} else {
		errs = append(errs, fmt.Errorf("parsing %s/enforce: %w", h.selinuxfs, err))
	}
	config, err := os.ReadFile(h.config)
	switch {
	case err == nil:
		s.configMode = parseSELinuxConfig(config)
	case !errors.Is(err, fs.ErrNotExist):
		errs = append(errs, fmt.Errorf("reading %s: %w", h.config, err))
	}
	return s, errors.Join(errs...)
}

// parseSELinuxConfig returns the mode SELINUX= of /etc/selinux/config sets,
// by go-selinux's rules: blank lines and lines starting with # or ; are
// skipped, the key must be written exactly, double quotes around the value
// are dropped, and anything but enforcing or permissive is disabled.
//
//	# This file controls the state of SELinux on the system.
//	SELINUX=enforcing
//	SELINUXTYPE=targeted
func parseSELinuxConfig(b []byte) int {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' || line[0] == ';' {
			continue
		}
		key, val, ok := bytes.Cut(line, []byte("="))
		if !ok || string(key) != "SELINUX" {
			continue
		}
		switch string(bytes.Trim(val, `"`)) {
		case "enforcing":
			return selinuxEnforcing
		case "permissive":
			return selinuxPermissive
		}
		return selinuxDisabled
	}
	return selinuxDisabled
}
