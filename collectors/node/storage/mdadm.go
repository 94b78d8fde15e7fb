package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "mdadm",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newMdadmCollector(env), nil }
		},
	})
}

// mdadmCollector serves Linux software RAID state from /proc/mdstat and
// /sys/block/md*/md.
type mdadmCollector struct {
	proc     procfs.FS
	sys      sysfs.FS
	procPath string
	sysPath  string
	logger   *slog.Logger

	disksRequired, disks, blocks, blocksSynced, raidDisks, degraded *prometheus.Desc
	// node_md_state has one series per state, each with a constant
	// state label, as node_exporter serves it.
	stateActive, stateInactive, stateRecovering, stateResync, stateCheck *prometheus.Desc
}

func newMdadmCollector(env collectors.Env) *mdadmCollector {
	device := []string{"device"}
	state := func(s string) *prometheus.Desc {
		return prometheus.NewDesc("node_md_state", "Indicates the state of md-device.", device, prometheus.Labels{"state": s})
	}
	return &mdadmCollector{
		proc:            env.Proc,
		sys:             env.Sys,
		procPath:        env.Paths.ProcFS,
		sysPath:         env.Paths.SysFS,
		logger:          env.Logger,
		disksRequired:   prometheus.NewDesc("node_md_disks_required", "Total number of disks of device.", device, nil),
		disks:           prometheus.NewDesc("node_md_disks", "Number of active/failed/spare disks of device.", []string{"device", "state"}, nil),
		blocks:          prometheus.NewDesc("node_md_blocks", "Total number of blocks on device.", device, nil),
		blocksSynced:    prometheus.NewDesc("node_md_blocks_synced", "Number of blocks synced on device.", device, nil),
		raidDisks:       prometheus.NewDesc("node_md_raid_disks", "Number of raid disks on device.", device, nil),
		degraded:        prometheus.NewDesc("node_md_degraded", "Number of degraded disks on device.", device, nil),
		stateActive:     state("active"),
		stateInactive:   state("inactive"),
		stateRecovering: state("recovering"),
		stateResync:     state("resync"),
		stateCheck:      state("check"),
	}
}

func (c *mdadmCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	arrays, err := c.proc.MDStat()
	if errors.Is(err, fs.ErrNotExist) {
		// The md driver is not loaded.
		c.logger.Debug("mdadm: no mdstat", "err", err)
		return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s/mdstat: %w", c.procPath, err)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	is := func(state, want string) float64 {
		if state == want {
			return 1
		}
		return 0
	}
	for _, md := range arrays {
		name := hostfile.ValidLabel(md.Name)
		gauge(c.disksRequired, float64(md.DisksTotal), name)
		gauge(c.disks, float64(md.DisksActive), name, "active")
		gauge(c.disks, float64(md.DisksFailed), name, "failed")
		gauge(c.disks, float64(md.DisksSpare), name, "spare")
		// procfs' activity states; "reshaping" sets none of node_exporter's.
		gauge(c.stateActive, is(md.ActivityState, "active"), name)
		gauge(c.stateInactive, is(md.ActivityState, "inactive"), name)
		gauge(c.stateRecovering, is(md.ActivityState, "recovering"), name)
		gauge(c.stateResync, is(md.ActivityState, "resyncing"), name)
		gauge(c.stateCheck, is(md.ActivityState, "checking"), name)
		gauge(c.blocks, float64(md.BlocksTotal), name)
		gauge(c.blocksSynced, float64(md.BlocksSynced), name)
	}

	raids, err := c.sys.Mdraids()
	if err != nil {
		return fmt.Errorf("reading %s/block/md*/md: %w", c.sysPath, err)
	}
	for _, md := range raids {
		name := hostfile.ValidLabel(md.Device)
		if md.Disks != nil {
			gauge(c.raidDisks, float64(*md.Disks), name)
		}
		gauge(c.degraded, float64(md.DegradedDisks), name)
	}
	return nil
}
