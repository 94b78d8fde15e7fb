package cadvisor

import (
	"sync"
	"time"

	"github.com/prometheus/procfs/blockdevice"

	"github.com/nodeagent/nodeagent/cgroup"
)

// ioFamilies are cAdvisor's per-device I/O counters from io.stat, one
// series per device line (the kernel lists only devices the cgroup did I/O
// on), the device named /dev/<name> from /proc/diskstats.
func ioFamilies() []containerFamily {
	ioFam := func(name, help string, value func(e *cgroup.IOStat) float64) containerFamily {
		return containerFamily{name: name, help: help, typ: counter, files: cgroup.Files(cgroup.FileIOStat),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				for i := range s.ioLabels {
					b.add(s.ioLabels[i].fs, value(&s.stats.IO[i]))
				}
			}}
	}
	return []containerFamily{
		ioFam("container_fs_reads_bytes_total", "Cumulative count of bytes read", func(e *cgroup.IOStat) float64 { return float64(e.RBytes) }),
		ioFam("container_fs_writes_bytes_total", "Cumulative count of bytes written", func(e *cgroup.IOStat) float64 { return float64(e.WBytes) }),
		ioFam("container_fs_reads_total", "Cumulative count of reads completed", func(e *cgroup.IOStat) float64 { return float64(e.RIOs) }),
		ioFam("container_fs_writes_total", "Cumulative count of writes completed", func(e *cgroup.IOStat) float64 { return float64(e.WIOs) }),
		{name: "container_blkio_device_usage_total", help: "Blkio Device bytes usage", typ: counter, files: cgroup.Files(cgroup.FileIOStat),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				for i := range s.ioLabels {
					e := &s.stats.IO[i]
					b.add(s.ioLabels[i].blkio[0], float64(e.RBytes))
					b.add(s.ioLabels[i].blkio[1], float64(e.WBytes))
				}
			}},
	}
}

// prepareIO resolves the device labels of each served cgroup's io.stat
// lines before the families are built in parallel.
func (c *cadvisorCollector) prepareIO(served []*cgState) {
	for _, s := range served {
		s.ioLabels = s.ioLabels[:0]
		if !s.stats.Present.Has(cgroup.FileIOStat) {
			continue
		}
		for _, e := range s.stats.IO {
			s.ioLabels = append(s.ioLabels, c.ioLabelsFor(s.labels, e.Major, e.Minor, c.devices.name(e.Major, e.Minor)))
		}
	}
}

// blockDevices names block devices by MAJ:MIN from /proc/diskstats,
// reloading it when a device is missing (at most once a minute).
type blockDevices struct {
	procPath string
	mu       sync.Mutex
	names    map[uint64]string
	loaded   time.Time
}

func newBlockDevices(procPath string) *blockDevices {
	return &blockDevices{procPath: procPath}
}

// name returns "/dev/<name>", or "" for a device /proc/diskstats lacks
// (as cAdvisor leaves it).
func (d *blockDevices) name(maj, min uint32) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := uint64(maj)<<32 | uint64(min)
	if n, ok := d.names[key]; ok {
		return n
	}
	if time.Since(d.loaded) < time.Minute {
		return ""
	}
	d.loaded = time.Now()
	// Only /proc/diskstats is read; blockdevice wants a sysfs path too.
	fs, err := blockdevice.NewFS(d.procPath, d.procPath)
	if err != nil {
		return ""
	}
	stats, err := fs.ProcDiskstats()
	if err != nil {
		return ""
	}
	d.names = make(map[uint64]string, len(stats))
	for _, s := range stats {
		d.names[uint64(s.MajorNumber)<<32|uint64(s.MinorNumber)] = "/dev/" + s.DeviceName
	}
	return d.names[key]
}
