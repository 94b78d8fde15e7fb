package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/btrfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "btrfs",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) {
				return newBtrfsCollector(env, ioctlBtrfs{}), nil
			}
		},
	})
}

// btrfsCollector serves /sys/fs/btrfs/<uuid>/ as node_exporter does, and,
// for filesystems mounted on the host, each device's use and error counters
// from the btrfs ioctls. Without those (no privilege, not mounted) device
// sizes come from sysfs, labelled by device only — node_exporter's fallback.
type btrfsCollector struct {
	sysPath  string
	proc     procfs.FS
	procPath string
	rootfs   string
	ioctl    btrfsDeviceReader
	logger   *slog.Logger

	info, globalRsvSize                             *prometheus.Desc
	commits, lastCommit, maxCommit, commitSeconds   *prometheus.Desc
	reserved, used, size, ratio                     *prometheus.Desc
	deviceSizeSysfs, deviceSize, deviceUnused, errs *prometheus.Desc
}

func newBtrfsCollector(env collectors.Env, ioctl btrfsDeviceReader) *btrfsCollector {
	uuid := []string{"uuid"}
	layout := []string{"uuid", "block_group_type", "mode"}
	device := []string{"uuid", "device", "btrfs_dev_uuid"}
	return &btrfsCollector{
		sysPath:  env.Paths.SysFS,
		proc:     env.Proc,
		procPath: env.Paths.ProcFS,
		rootfs:   env.Paths.RootFS,
		ioctl:    ioctl,
		logger:   env.Logger,

		info:          prometheus.NewDesc("node_btrfs_info", "Filesystem information", []string{"uuid", "label"}, nil),
		globalRsvSize: prometheus.NewDesc("node_btrfs_global_rsv_size_bytes", "Size of global reserve.", uuid, nil),
		commits:       prometheus.NewDesc("node_btrfs_commits_total", "The total number of commits that have occurred.", uuid, nil),
		lastCommit:    prometheus.NewDesc("node_btrfs_last_commit_seconds", "Duration of the most recent commit, in seconds.", uuid, nil),
		maxCommit:     prometheus.NewDesc("node_btrfs_max_commit_seconds", "Duration of the slowest commit, in seconds.", uuid, nil),
		commitSeconds: prometheus.NewDesc("node_btrfs_commit_seconds_total", "Sum of the duration of all commits, in seconds.", uuid, nil),
		reserved: prometheus.NewDesc("node_btrfs_reserved_bytes", "Amount of space reserved for a data type",
			[]string{"uuid", "block_group_type"}, nil),
		used:  prometheus.NewDesc("node_btrfs_used_bytes", "Amount of used space by a layout/data type", layout, nil),
		size:  prometheus.NewDesc("node_btrfs_size_bytes", "Amount of space allocated for a layout/data type", layout, nil),
		ratio: prometheus.NewDesc("node_btrfs_allocation_ratio", "Data allocation ratio for a layout/data type", layout, nil),
		deviceSizeSysfs: prometheus.NewDesc("node_btrfs_device_size_bytes",
			"Size of a device that is part of the filesystem.", []string{"uuid", "device"}, nil),
		deviceSize: prometheus.NewDesc("node_btrfs_device_size_bytes",
			"Size of a device that is part of the filesystem.", device, nil),
		deviceUnused: prometheus.NewDesc("node_btrfs_device_unused_bytes",
			"Unused bytes unused on a device that is part of the filesystem.", device, nil),
		errs: prometheus.NewDesc("node_btrfs_device_errors_total", "Errors reported for the device",
			[]string{"uuid", "type", "device", "btrfs_dev_uuid"}, nil),
	}
}

// btrfsErrorTypes label the ioctl's device statistics, in its order.
var btrfsErrorTypes = [5]string{"write", "read", "flush", "corruption", "generation"}

func (c *btrfsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	pattern := filepath.Join(c.sysPath, "fs/btrfs/*-*")
	var ioctlStats map[string][]btrfsIoctlDevice
	n, err := hostfile.EachMatch(ctx, pattern, func(dir string) error {
		s, err := btrfs.GetStats(dir)
		if err != nil {
			return fmt.Errorf("reading %s: %w", dir, err)
		}
		if s.UUID == "" {
			s.UUID = filepath.Base(dir)
		}
		if ioctlStats == nil {
			ioctlStats = c.ioctlStats()
		}
		c.send(ch, s, ioctlStats[strings.ReplaceAll(s.UUID, "-", "")])
		return nil
	})
	if n == 0 && err == nil {
		return fmt.Errorf("%w: no btrfs filesystem in %s", collectors.ErrNoData, filepath.Dir(pattern))
	}
	return err
}

func (c *btrfsCollector) send(ch chan<- prometheus.Metric, s *btrfs.Stats, devs []btrfsIoctlDevice) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(c.info, 1, s.UUID, s.Label)
	gauge(c.globalRsvSize, float64(s.Allocation.GlobalRsvSize), s.UUID)
	ch <- prometheus.MustNewConstMetric(c.commits, prometheus.CounterValue, float64(s.CommitStats.Commits), s.UUID)
	gauge(c.lastCommit, float64(s.CommitStats.LastCommitMs)/1000, s.UUID)
	gauge(c.maxCommit, float64(s.CommitStats.MaxCommitMs)/1000, s.UUID)
	ch <- prometheus.MustNewConstMetric(c.commitSeconds, prometheus.CounterValue, float64(s.CommitStats.TotalCommitMs)/1000, s.UUID)

	for _, a := range []struct {
		blockGroupType string
		stats          *btrfs.AllocationStats
	}{{"data", s.Allocation.Data}, {"metadata", s.Allocation.Metadata}, {"system", s.Allocation.System}} {
		if a.stats == nil {
			continue
		}
		gauge(c.reserved, float64(a.stats.ReservedBytes), s.UUID, a.blockGroupType)
		for mode, l := range a.stats.Layouts {
			gauge(c.used, float64(l.UsedBytes), s.UUID, a.blockGroupType, mode)
			gauge(c.size, float64(l.TotalBytes), s.UUID, a.blockGroupType, mode)
			gauge(c.ratio, l.Ratio, s.UUID, a.blockGroupType, mode)
		}
	}

	if devs == nil {
		for name, d := range s.Devices {
			gauge(c.deviceSizeSysfs, float64(d.Size), s.UUID, name)
		}
		return
	}
	for _, d := range devs {
		// /dev/sda1 -> sda1, as sysfs names the device in the fallback.
		_, name := path.Split(d.path)
		gauge(c.deviceSize, float64(d.totalBytes), s.UUID, name, d.uuid)
		gauge(c.deviceUnused, float64(d.totalBytes-d.bytesUsed), s.UUID, name, d.uuid)
		for i, typ := range btrfsErrorTypes {
			ch <- prometheus.MustNewConstMetric(c.errs, prometheus.CounterValue, float64(d.errs[i]), s.UUID, typ, name, d.uuid)
		}
	}
}

// ioctlStats finds the host's btrfs mounts in the mount table of PID 1 (of
// the process itself when hidepid hides PID 1) and asks each filesystem,
// once, for its devices. Failures are logged at debug and leave that
// filesystem to the sysfs fallback, as node_exporter does.
func (c *btrfsCollector) ioctlStats() map[string][]btrfsIoctlDevice {
	mounts, err := c.proc.GetProcMounts(1)
	if errors.Is(err, fs.ErrNotExist) {
		mounts, err = c.proc.GetMounts()
	}
	if err != nil {
		c.logger.Debug("Reading mounts for btrfs device statistics failed", "path", c.procPath, "err", err)
		return nil
	}
	out := map[string][]btrfsIoctlDevice{}
	seen := map[string]bool{} // by mount source
	for _, m := range mounts {
		if m.FSType != "btrfs" || seen[m.Source] {
			continue
		}
		mountPath := c.hostPath(m.MountPoint)
		fsid, devs, err := c.ioctl.devices(mountPath)
		if err != nil {
			c.logger.Debug("Querying btrfs device statistics failed", "mountpoint", mountPath, "err", err)
			continue
		}
		seen[m.Source] = true
		if _, dup := out[fsid]; !dup {
			out[fsid] = devs
		}
	}
	return out
}

// hostPath maps a mount point of the host's mount table to a path this
// process can open: below --path.rootfs, with fstab's octal escapes of
// spaces and tabs undone.
func (c *btrfsCollector) hostPath(mountPoint string) string {
	mountPoint = strings.ReplaceAll(mountPoint, `\040`, " ")
	mountPoint = strings.ReplaceAll(mountPoint, `\011`, "\t")
	if c.rootfs == "/" || c.rootfs == "" {
		return mountPoint
	}
	stripped := strings.TrimPrefix(mountPoint, c.rootfs)
	if stripped == "" {
		stripped = "/"
	}
	return filepath.Join(c.rootfs, stripped)
}
