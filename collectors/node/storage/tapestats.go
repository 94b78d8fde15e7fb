package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

// tapestatsConfig holds the tapestats collector's flags.
type tapestatsConfig struct {
	ignoredDevices string
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "tapestats",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &tapestatsConfig{}
			app.Flag("collector.tapestats.ignored-devices", "Regexp of devices to ignore for tapestats.").
				Default("^$").StringVar(&cfg.ignoredDevices)
			return func(env collectors.Env) (collectors.Collector, error) { return newTapestatsCollector(env, *cfg) }
		},
	})
}

// tapestatsCollector serves /sys/class/scsi_tape/st*/stats as node_exporter
// does (see the kernel's Documentation/scsi/st.rst): times in seconds, the
// rest as the kernel counts them.
type tapestatsCollector struct {
	sys     sysfs.FS
	sysPath string
	ignored *regexp.Regexp

	ioNow, ioTime, othersCompleted, readBytes, readsCompleted, readTime *prometheus.Desc
	writtenBytes, writesCompleted, writeTime, residual                  *prometheus.Desc
}

func newTapestatsCollector(env collectors.Env, cfg tapestatsConfig) (*tapestatsCollector, error) {
	ignored, err := regexp.Compile(cfg.ignoredDevices)
	if err != nil {
		return nil, fmt.Errorf("--collector.tapestats.ignored-devices: %w", err)
	}
	device := []string{"device"}
	return &tapestatsCollector{
		sys:     env.Sys,
		sysPath: env.Paths.SysFS,
		ignored: ignored,
		ioNow: prometheus.NewDesc("node_tape_io_now",
			"The number of I/Os currently outstanding to this device.", device, nil),
		ioTime: prometheus.NewDesc("node_tape_io_time_seconds_total",
			"The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.", device, nil),
		othersCompleted: prometheus.NewDesc("node_tape_io_others_total",
			"The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total", device, nil),
		readBytes: prometheus.NewDesc("node_tape_read_bytes_total",
			"The number of bytes read from the tape drive.", device, nil),
		readsCompleted: prometheus.NewDesc("node_tape_reads_completed_total",
			"The number of read requests issued to the tape drive.", device, nil),
		readTime: prometheus.NewDesc("node_tape_read_time_seconds_total",
			"The amount of time spent waiting for read requests to complete.", device, nil),
		writtenBytes: prometheus.NewDesc("node_tape_written_bytes_total",
			"The number of bytes written to the tape drive.", device, nil),
		writesCompleted: prometheus.NewDesc("node_tape_writes_completed_total",
			"The number of write requests issued to the tape drive.", device, nil),
		writeTime: prometheus.NewDesc("node_tape_write_time_seconds_total",
			"The amount of time spent waiting for write requests to complete.", device, nil),
		residual: prometheus.NewDesc("node_tape_residual_total",
			"The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.", device, nil),
	}, nil
}

func (c *tapestatsCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	tapes, err := c.readTapes()
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s/class/scsi_tape: %w", collectors.ErrNoData, c.sysPath, err)
	}
	if err != nil {
		return err
	}
	for _, tape := range tapes {
		if c.ignored.MatchString(tape.Name) {
			continue
		}
		t := tape.Counters
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, tape.Name)
		}
		ch <- prometheus.MustNewConstMetric(c.ioNow, prometheus.GaugeValue, float64(t.InFlight), tape.Name)
		// Nanoseconds scaled as node_exporter scales them (times 1e-9,
		// which can differ from division by 1e9 in the last bit).
		counter(c.ioTime, float64(t.IoNs)*0.000000001)
		counter(c.othersCompleted, float64(t.OtherCnt))
		counter(c.readBytes, float64(t.ReadByteCnt))
		counter(c.readsCompleted, float64(t.ReadCnt))
		counter(c.readTime, float64(t.ReadNs)*0.000000001)
		counter(c.residual, float64(t.ResidCnt))
		counter(c.writtenBytes, float64(t.WriteByteCnt))
		counter(c.writesCompleted, float64(t.WriteCnt))
		counter(c.writeTime, float64(t.WriteNs)*0.000000001)
	}
	return nil
}

// readTapes reads the tape class. procfs v0.23.0 dereferences a nil pointer
// when a stats file is not a number; that becomes an error here, not a
// crash.
func (c *tapestatsCollector) readTapes() (tapes sysfs.SCSITapeClass, err error) {
	defer hostfile.GuardProcfs(c.sysPath+"/class/scsi_tape/st*/stats", &err)
	tapes, err = c.sys.SCSITapeClass()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("reading %s/class/scsi_tape: %w", c.sysPath, err)
	}
	return tapes, err
}
