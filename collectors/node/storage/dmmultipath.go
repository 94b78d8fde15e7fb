package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/blockdevice"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "dmmultipath",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newDMMultipathCollector(env) }
		},
	})
}

// dmmultipathCollector serves the device-mapper multipath devices of
// /sys/block/dm-* (dm/uuid starting with "mpath-") and the state of their
// paths, as node_exporter does: SAN-backed persistent volumes (iSCSI, FC)
// sit on these.
type dmmultipathCollector struct {
	fs      blockdevice.FS
	sysPath string

	info, active, size, paths, pathsActive, pathsFailed, pathState *prometheus.Desc
}

func newDMMultipathCollector(env collectors.Env) (*dmmultipathCollector, error) {
	fs, err := blockdevice.NewFS(env.Paths.ProcFS, env.Paths.SysFS)
	if err != nil {
		return nil, fmt.Errorf("--path.procfs %s, --path.sysfs %s: %w", env.Paths.ProcFS, env.Paths.SysFS, err)
	}
	device := []string{"device", "sysfs_name"}
	return &dmmultipathCollector{
		fs:      fs,
		sysPath: env.Paths.SysFS,
		info: prometheus.NewDesc("node_dmmultipath_device_info",
			"Non-numeric information about a DM-multipath device.", []string{"device", "sysfs_name", "uuid"}, nil),
		active: prometheus.NewDesc("node_dmmultipath_device_active",
			"Whether the multipath device-mapper device is active (1) or suspended (0).", device, nil),
		size: prometheus.NewDesc("node_dmmultipath_device_size_bytes",
			"Size of the multipath device in bytes, read from /sys/block/<dm>/size.", device, nil),
		paths: prometheus.NewDesc("node_dmmultipath_device_paths",
			"Number of paths for a multipath device.", device, nil),
		pathsActive: prometheus.NewDesc("node_dmmultipath_device_paths_active",
			"Number of paths in active state (SCSI running or NVMe live) for a multipath device.", device, nil),
		pathsFailed: prometheus.NewDesc("node_dmmultipath_device_paths_failed",
			"Number of paths not in active state for a multipath device.", device, nil),
		pathState: prometheus.NewDesc("node_dmmultipath_path_state",
			"Reports the underlying device state for a multipath path, as read from /sys/block/<dev>/device/state.",
			[]string{"device", "path", "state"}, nil),
	}, nil
}

func (c *dmmultipathCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	devices, err := c.fs.DMMultipathDevices()
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: %s/block: %w", collectors.ErrNoData, c.sysPath, err)
	}
	if err != nil {
		return fmt.Errorf("reading multipath devices in %s/block: %w", c.sysPath, err)
	}
	if len(devices) == 0 {
		return fmt.Errorf("%w: no multipath device in %s/block", collectors.ErrNoData, c.sysPath)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, d := range devices {
		gauge(c.info, 1, d.Name, d.SysfsName, d.UUID)
		active := 1.0
		if d.Suspended {
			active = 0
		}
		gauge(c.active, active, d.Name, d.SysfsName)
		gauge(c.size, float64(d.SizeBytes), d.Name, d.SysfsName)
		var up, down float64
		for _, p := range d.Paths {
			// SCSI paths are "running" when usable, NVMe paths "live".
			if p.State == "running" || p.State == "live" {
				up++
			} else {
				down++
			}
			gauge(c.pathState, 1, d.Name, p.Device, p.State)
		}
		gauge(c.paths, float64(len(d.Paths)), d.Name, d.SysfsName)
		gauge(c.pathsActive, up, d.Name, d.SysfsName)
		gauge(c.pathsFailed, down, d.Name, d.SysfsName)
	}
	return nil
}
