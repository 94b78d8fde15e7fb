package storage

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs/blockdevice"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/devicefilter"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

const (
	// defaultDiskstatsDeviceExclude is node_exporter 1.12's: partitions,
	// RAM and loop devices, whose I/O is already counted on the whole disk.
	defaultDiskstatsDeviceExclude = `^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`
	// diskSectorBytes: /proc/diskstats counts 512-byte sectors whatever the
	// device's block size (Documentation/block/stat.rst).
	diskSectorBytes = 512.0
	// diskTickSeconds: its times are in milliseconds.
	diskTickSeconds = 1.0 / 1000.0
	// udevMaxFileBytes bounds one udev database file; real ones are a few KiB.
	udevMaxFileBytes = 1 << 20
)

// diskstatsConfig holds the diskstats collector's flags.
type diskstatsConfig struct {
	devices *devicefilter.Flags
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "diskstats",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &diskstatsConfig{}
			cfg.devices = devicefilter.AddFlags(app,
				"collector.diskstats.device-exclude", defaultDiskstatsDeviceExclude,
				"Regexp of diskstats devices to exclude (mutually exclusive to device-include).",
				"collector.diskstats.device-include",
				"Regexp of diskstats devices to include (mutually exclusive to device-exclude).")
			return func(env collectors.Env) (collectors.Collector, error) { return newDiskstatsCollector(env, *cfg) }
		},
	})
}

// diskstatsCollector serves /proc/diskstats, with node_disk_info and the
// filesystem, device-mapper and ATA facts of udev's database
// (--path.udev.data), as node_exporter's diskstats collector does.
type diskstatsCollector struct {
	fs       blockdevice.FS
	procPath string
	udevPath string // "" when the udev database is not readable
	logger   *slog.Logger
	devices  devicefilter.Filter

	// stats are the per-device counters in /proc/diskstats column order;
	// a line with fewer columns (older kernels) serves the first ones.
	stats                          []diskStat
	info, filesystemInfo, dmInfo   *collectors.CompactDesc
	ataWriteCache, ataWriteEnabled *collectors.CompactDesc
	ataRotationRate                *collectors.CompactDesc
	// labels are the devices' label sets ({device=...}) of the last
	// scrape, so that each is built once while the device exists.
	labels map[string]*exposition.LabelSet
	// udev keeps the properties read from each device's udev database
	// file in the last scrape, with what identifies that version of the
	// file: udevd writes a new file and renames it over the old one (a
	// new inode), so a stat tells whether to read and parse it again.
	udev map[string]udevFile
}

// udevFile is one udev database file as last read.
type udevFile struct {
	version hostfile.FileVersion
	props   map[string]string
}

type diskStat struct {
	desc  *collectors.CompactDesc
	value func(*blockdevice.Diskstats) float64
}

func newDiskstatsCollector(env collectors.Env, cfg diskstatsConfig) (*diskstatsCollector, error) {
	devices, err := cfg.devices.Build("collector.diskstats.device-exclude", "collector.diskstats.device-include")
	if err != nil {
		return nil, err
	}
	fs, err := blockdevice.NewFS(env.Paths.ProcFS, env.Paths.SysFS)
	if err != nil {
		return nil, fmt.Errorf("opening %s and %s: %w", env.Paths.ProcFS, env.Paths.SysFS, err)
	}
	gauge := dto.MetricType_GAUGE
	c := &diskstatsCollector{
		fs:       fs,
		procPath: env.Paths.ProcFS,
		logger:   env.Logger,
		devices:  devices,
		info: collectors.NewCompactDesc("node_disk_info", "Info of /sys/block/<block_device>.", gauge,
			"device", "major", "minor", "path", "wwn", "model", "serial", "revision", "rotational"),
		filesystemInfo: collectors.NewCompactDesc("node_disk_filesystem_info", "Info about disk filesystem.", gauge,
			"device", "type", "usage", "uuid", "version"),
		dmInfo: collectors.NewCompactDesc("node_disk_device_mapper_info", "Info about disk device mapper.", gauge,
			"device", "name", "uuid", "vg_name", "lv_name", "lv_layer"),
		ataWriteCache: collectors.NewCompactDesc("node_disk_ata_write_cache", "ATA disk has a write cache.", gauge,
			"device"),
		ataWriteEnabled: collectors.NewCompactDesc("node_disk_ata_write_cache_enabled", "ATA disk has its write cache enabled.", gauge,
			"device"),
		ataRotationRate: collectors.NewCompactDesc("node_disk_ata_rotation_rate_rpm", "ATA disk rotation rate in RPMs (0 for SSDs).", gauge,
			"device"),
	}
	stat := func(name, help string, typ dto.MetricType, value func(*blockdevice.Diskstats) float64) {
		c.stats = append(c.stats, diskStat{collectors.NewCompactDesc(name, help, typ, "device"), value})
	}
	counter := dto.MetricType_COUNTER
	stat("node_disk_reads_completed_total", "The total number of reads completed successfully.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.ReadIOs) })
	stat("node_disk_reads_merged_total", "The total number of reads merged.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.ReadMerges) })
	stat("node_disk_read_bytes_total", "The total number of bytes read successfully.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.ReadSectors) * diskSectorBytes })
	stat("node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.ReadTicks) * diskTickSeconds })
	stat("node_disk_writes_completed_total", "The total number of writes completed successfully.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.WriteIOs) })
	stat("node_disk_writes_merged_total", "The number of writes merged.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.WriteMerges) })
	stat("node_disk_written_bytes_total", "The total number of bytes written successfully.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.WriteSectors) * diskSectorBytes })
	stat("node_disk_write_time_seconds_total", "This is the total number of seconds spent by all writes.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.WriteTicks) * diskTickSeconds })
	stat("node_disk_io_now", "The number of I/Os currently in progress.", gauge,
		func(d *blockdevice.Diskstats) float64 { return float64(d.IOsInProgress) })
	stat("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.IOsTotalTicks) * diskTickSeconds })
	stat("node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.WeightedIOTicks) * diskTickSeconds })
	stat("node_disk_discards_completed_total", "The total number of discards completed successfully.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.DiscardIOs) })
	stat("node_disk_discards_merged_total", "The total number of discards merged.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.DiscardMerges) })
	// Sectors, not bytes: node_exporter serves the count as read.
	stat("node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.DiscardSectors) })
	stat("node_disk_discard_time_seconds_total", "This is the total number of seconds spent by all discards.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.DiscardTicks) * diskTickSeconds })
	stat("node_disk_flush_requests_total", "The total number of flush requests completed successfully", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.FlushRequestsCompleted) })
	stat("node_disk_flush_requests_time_seconds_total", "This is the total number of seconds spent by all flush requests.", counter,
		func(d *blockdevice.Diskstats) float64 { return float64(d.TimeSpentFlushing) * diskTickSeconds })

	// Like node_exporter, use udev's database only if it is there at start
	// (it is absent in many containers and on hosts without udev).
	if fi, err := os.Stat(env.Paths.UdevData); err != nil || !fi.IsDir() {
		env.Logger.Warn("udev database not readable; node_disk_info is served without udev labels, and node_disk_filesystem_info, node_disk_device_mapper_info and node_disk_ata_* are not served",
			"path", env.Paths.UdevData)
	} else {
		c.udevPath = env.Paths.UdevData
	}
	return c, nil
}

func (c *diskstatsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the disks' families in compact form, the counters'
// label sets kept per device. Runs of one collector are serial.
func (c *diskstatsCollector) UpdateCompact(ctx context.Context) ([]*exposition.CompactFamily, error) {
	disks, err := c.fs.ProcDiskstats()
	if err != nil {
		return nil, fmt.Errorf("reading %s/diskstats: %w", c.procPath, err)
	}
	var b collectors.CompactBuilder
	labels := make(map[string]*exposition.LabelSet, len(disks))
	defer func() { c.labels = labels }()
	udevFiles := make(map[string]udevFile, len(disks))
	defer func() { c.udev = udevFiles }()
	for i := range disks {
		if err := ctx.Err(); err != nil {
			return b.Families(), err
		}
		d := &disks[i]
		if c.devices.Ignored(d.DeviceName) {
			continue
		}
		dev := hostfile.ValidLabel(d.DeviceName)
		var udev map[string]string
		if c.udevPath != "" {
			path := filepath.Join(c.udevPath, fmt.Sprintf("b%d:%d", d.MajorNumber, d.MinorNumber))
			if udev, err = c.readUdev(path, udevFiles); err != nil {
				c.logger.Debug("Failed to parse udev info", "path", path, "err", err)
			}
		}
		// The serial printed on the disk's label, else udev's short or
		// full serial (virtio disks have only the latter).
		serial := udev["SCSI_IDENT_SERIAL"]
		if serial == "" {
			serial = udev["ID_SERIAL_SHORT"]
		}
		if serial == "" {
			serial = udev["ID_SERIAL"]
		}
		b.AddValues(c.info, 1, dev,
			strconv.FormatUint(uint64(d.MajorNumber), 10), strconv.FormatUint(uint64(d.MinorNumber), 10),
			udev["ID_PATH"], udev["ID_WWN"], udev["ID_MODEL"], serial, udev["ID_REVISION"], c.rotational(d.DeviceName))

		// Major, minor and name are counted in IoStatsCount too.
		ls, ok := c.labels[dev]
		if !ok {
			ls = collectors.LabelSet("device", dev)
		}
		labels[dev] = ls
		for _, s := range c.stats[:min(max(d.IoStatsCount-3, 0), len(c.stats))] {
			b.AddLabels(s.desc, s.value(d), ls)
		}
		if t := udev["ID_FS_TYPE"]; t != "" {
			b.AddValues(c.filesystemInfo, 1, dev,
				t, udev["ID_FS_USAGE"], udev["ID_FS_UUID"], udev["ID_FS_VERSION"])
		}
		if name := udev["DM_NAME"]; name != "" {
			b.AddValues(c.dmInfo, 1, dev,
				name, udev["DM_UUID"], udev["DM_VG_NAME"], udev["DM_LV_NAME"], udev["DM_LV_LAYER"])
		}
		if udev["ID_ATA"] != "" {
			for _, a := range []struct {
				key  string
				desc *collectors.CompactDesc
			}{
				{"ID_ATA_WRITE_CACHE", c.ataWriteCache},
				{"ID_ATA_WRITE_CACHE_ENABLED", c.ataWriteEnabled},
				{"ID_ATA_ROTATION_RATE_RPM", c.ataRotationRate},
			} {
				s, ok := udev[a.key]
				if !ok {
					continue
				}
				v, err := strconv.ParseFloat(s, 64)
				if err != nil {
					c.logger.Error("Failed to parse ATA value", "device", dev, "attribute", a.key, "err", err)
					continue
				}
				b.AddLabels(a.desc, v, ls)
			}
		}
	}
	return b.Families(), nil
}

// rotational is node_disk_info's rotational label: "1" for spinning disks,
// "0" otherwise and when sysfs does not say (as node_exporter).
func (c *diskstatsCollector) rotational(dev string) string {
	if r, err := c.fs.SysBlockDeviceRotational(dev); err == nil && r == 1 {
		return "1"
	}
	return "0"
}

// readUdev returns the properties of udev database file path: those kept
// from the last scrape while the file is the same (inode, size and mtime),
// else read anew. What was read completely is kept in files.
func (c *diskstatsCollector) readUdev(path string, files map[string]udevFile) (map[string]string, error) {
	version, err := hostfile.StatVersion(path)
	if err != nil {
		return nil, err
	}
	if k, ok := c.udev[path]; ok && k.version == version {
		files[path] = k
		return k.props, nil
	}
	props, err := readUdevData(path)
	if err == nil {
		files[path] = udevFile{version: version, props: props}
	}
	return props, err
}

// readUdevData reads one device's file of udev's database; values are
// valid UTF-8.
func readUdevData(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	props, err := parseUdevData(io.LimitReader(f, udevMaxFileBytes))
	if err != nil {
		return props, fmt.Errorf("reading %s: %w", path, err)
	}
	return props, nil
}

// parseUdevData returns the device properties of a udev database file
// (/run/udev/data/b<major>:<minor>), the "E:KEY=value" lines; the other
// records (S: symlinks, W:, I:, G: tags…) are not properties. Sample:
//
//	S:disk/by-id/ata-ST4000NM0035-1V4107_ZC1234AB
//	I:2345678
//	E:ID_ATA=1
//	E:ID_MODEL=ST4000NM0035-1V4107
//	G:systemd
func parseUdevData(r io.Reader) (map[string]string, error) {
	props := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "E:")
		if !ok {
			continue
		}
		if k, v, found := strings.Cut(rest, "="); found {
			props[k] = hostfile.ValidLabel(v)
		}
	}
	return props, sc.Err()
}
