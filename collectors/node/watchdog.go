package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "watchdog",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newWatchdogCollector(env), nil }
		},
	})
}

// watchdogCollector serves /sys/class/watchdog/<device>/ as node_exporter
// does: a gauge per numeric attribute the driver provides, and an info
// series with the textual ones.
type watchdogCollector struct {
	sys     sysfs.FS
	sysPath string

	bootstatus, fwVersion, nowayout, timeleft, timeout, pretimeout, accessCs0, info *prometheus.Desc
}

func newWatchdogCollector(env collectors.Env) *watchdogCollector {
	name := []string{"name"}
	return &watchdogCollector{
		sys:     env.Sys,
		sysPath: env.Paths.SysFS,
		bootstatus: prometheus.NewDesc("node_watchdog_bootstatus",
			"Value of /sys/class/watchdog/<watchdog>/bootstatus", name, nil),
		fwVersion: prometheus.NewDesc("node_watchdog_fw_version",
			"Value of /sys/class/watchdog/<watchdog>/fw_version", name, nil),
		nowayout: prometheus.NewDesc("node_watchdog_nowayout",
			"Value of /sys/class/watchdog/<watchdog>/nowayout", name, nil),
		timeleft: prometheus.NewDesc("node_watchdog_timeleft_seconds",
			"Value of /sys/class/watchdog/<watchdog>/timeleft", name, nil),
		timeout: prometheus.NewDesc("node_watchdog_timeout_seconds",
			"Value of /sys/class/watchdog/<watchdog>/timeout", name, nil),
		pretimeout: prometheus.NewDesc("node_watchdog_pretimeout_seconds",
			"Value of /sys/class/watchdog/<watchdog>/pretimeout", name, nil),
		accessCs0: prometheus.NewDesc("node_watchdog_access_cs0",
			"Value of /sys/class/watchdog/<watchdog>/access_cs0", name, nil),
		info: prometheus.NewDesc("node_watchdog_info", "Info of /sys/class/watchdog/<watchdog>",
			[]string{"name", "options", "identity", "state", "status", "pretimeout_governor"}, nil),
	}
}

func (c *watchdogCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	wds, err := c.sys.WatchdogClass()
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrInvalid) {
		// No watchdog driver loaded, or its attributes are not ours to read.
		return fmt.Errorf("%w: %s/class/watchdog: %w", collectors.ErrNoData, c.sysPath, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s/class/watchdog: %w", c.sysPath, err)
	}
	if len(wds) == 0 {
		return fmt.Errorf("%w: no watchdog in %s/class/watchdog", collectors.ErrNoData, c.sysPath)
	}
	for _, wd := range wds {
		for _, g := range []struct {
			desc  *prometheus.Desc
			value *int64
		}{
			{c.bootstatus, wd.Bootstatus},
			{c.fwVersion, wd.FwVersion},
			{c.nowayout, wd.Nowayout},
			{c.timeleft, wd.Timeleft},
			{c.timeout, wd.Timeout},
			{c.pretimeout, wd.Pretimeout},
			{c.accessCs0, wd.AccessCs0},
		} {
			if g.value != nil {
				ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(*g.value), wd.Name)
			}
		}
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, wd.Name,
			hostfile.StringOrEmpty(wd.Options), hostfile.StringOrEmpty(wd.Identity), hostfile.StringOrEmpty(wd.State),
			hostfile.StringOrEmpty(wd.Status), hostfile.StringOrEmpty(wd.PretimeoutGovernor))
	}
	return nil
}
