package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/bcachefs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/descs"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "bcachefs",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newBcachefsCollector(env), nil }
		},
		KnownLintProblems: []collectors.LintException{
			collectors.Inherited(`node_bcachefs_.*_total`, "", "node_exporter names a counter family after each of the kernel's bcachefs counter files"),
		},
	})
}

// bcachefsCollector serves /sys/fs/bcachefs/<uuid>/ as node_exporter does.
// Besides fixed families it serves one counter family per file of
// counters/, named node_bcachefs_<file>_total after the kernel's counter:
// those names cannot be written out here, the kernel chooses them.
type bcachefsCollector struct {
	sysPath string
	logger  *slog.Logger
	// counterDescs are the per-counter Descs, built once per name.
	counterDescs descs.ByName

	info, btreeCacheSize, compressed, uncompressed, errs, btreeWrites, btreeWriteSize *prometheus.Desc
	deviceInfo, bucketSize, buckets, durability, ioDone, ioErrors                     *prometheus.Desc
}

// bcachefsFixedFamilies are the families a counter file must not be named
// into: a counter called "errors" would otherwise clash with
// node_bcachefs_errors_total and break the whole family.
var bcachefsFixedFamilies = map[string]bool{
	"node_bcachefs_errors_total": true, "node_bcachefs_btree_writes_total": true,
	"node_bcachefs_device_io_done_bytes_total": true, "node_bcachefs_device_io_errors_total": true,
}

// bcachefsCounterNameRE is node_exporter's SanitizeMetricName: every run of
// characters outside [0-9A-Za-z_], with the underscores around it, becomes
// one underscore.
var bcachefsCounterNameRE = regexp.MustCompile(`_*[^0-9A-Za-z_]+_*`)

func newBcachefsCollector(env collectors.Env) *bcachefsCollector {
	uuid := []string{"uuid"}
	dev := []string{"uuid", "device"}
	return &bcachefsCollector{
		sysPath: env.Paths.SysFS,
		logger:  env.Logger,

		info:           prometheus.NewDesc("node_bcachefs_info", "Filesystem information.", uuid, nil),
		btreeCacheSize: prometheus.NewDesc("node_bcachefs_btree_cache_size_bytes", "Btree cache memory usage in bytes.", uuid, nil),
		compressed: prometheus.NewDesc("node_bcachefs_compression_compressed_bytes",
			"Compressed size by algorithm.", []string{"uuid", "algorithm"}, nil),
		uncompressed: prometheus.NewDesc("node_bcachefs_compression_uncompressed_bytes",
			"Uncompressed size by algorithm.", []string{"uuid", "algorithm"}, nil),
		errs: prometheus.NewDesc("node_bcachefs_errors_total",
			"Error count by error type.", []string{"uuid", "error_type"}, nil),
		btreeWrites: prometheus.NewDesc("node_bcachefs_btree_writes_total",
			"Number of btree writes by type.", []string{"uuid", "type"}, nil),
		btreeWriteSize: prometheus.NewDesc("node_bcachefs_btree_write_average_size_bytes",
			"Average btree write size by type.", []string{"uuid", "type"}, nil),
		deviceInfo: prometheus.NewDesc("node_bcachefs_device_info",
			"Device information.", []string{"uuid", "device", "label", "state"}, nil),
		bucketSize: prometheus.NewDesc("node_bcachefs_device_bucket_size_bytes", "Bucket size in bytes.", dev, nil),
		buckets:    prometheus.NewDesc("node_bcachefs_device_buckets", "Total number of buckets.", dev, nil),
		durability: prometheus.NewDesc("node_bcachefs_device_durability", "Device durability setting.", dev, nil),
		ioDone: prometheus.NewDesc("node_bcachefs_device_io_done_bytes_total",
			"IO bytes by operation type and data type.", []string{"uuid", "device", "operation", "data_type"}, nil),
		ioErrors: prometheus.NewDesc("node_bcachefs_device_io_errors_total",
			"IO errors by error type.", []string{"uuid", "device", "type"}, nil),
	}
}

func (c *bcachefsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	base := filepath.Join(c.sysPath, "fs/bcachefs")
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s: %w", collectors.ErrNoData, base, err)
	}
	if err != nil {
		return fmt.Errorf("listing %s: %w", base, err)
	}
	var errs []error
	served := 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		// One filesystem at a time: a bad one is named and the others are
		// served.
		dir := filepath.Join(base, e.Name())
		s, err := bcachefs.GetStats(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s: %w", dir, err))
			continue
		}
		c.send(ch, e.Name(), s)
		served++
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if served == 0 {
		return fmt.Errorf("%w: no bcachefs filesystem in %s", collectors.ErrNoData, base)
	}
	return nil
}

func (c *bcachefsCollector) send(ch chan<- prometheus.Metric, uuid string, s *bcachefs.Stats) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(c.info, 1, uuid)
	gauge(c.btreeCacheSize, float64(s.BtreeCacheSizeBytes), uuid)
	for algorithm, comp := range s.Compression {
		gauge(c.compressed, float64(comp.CompressedBytes), uuid, algorithm)
		gauge(c.uncompressed, float64(comp.UncompressedBytes), uuid, algorithm)
	}
	for errorType, e := range s.Errors {
		counter(c.errs, float64(e.Count), uuid, errorType)
	}
	for name, cs := range s.Counters {
		metric := "node_bcachefs_" + bcachefsCounterNameRE.ReplaceAllString(name, "_") + "_total"
		if bcachefsFixedFamilies[metric] {
			c.logger.Debug("Skipping bcachefs counter that would clash with a fixed family", "counter", name, "uuid", uuid)
			continue
		}
		d := c.counterDescs.Get(metric, fmt.Sprintf("Bcachefs counter %s since filesystem creation.", name), []string{"uuid"})
		m, err := prometheus.NewConstMetric(d, prometheus.CounterValue, float64(cs.SinceFilesystemCreation), uuid)
		if err != nil {
			c.logger.Debug("Skipping bcachefs counter", "counter", name, "uuid", uuid, "err", err)
			continue
		}
		ch <- m
	}
	for writeType, w := range s.BtreeWrites {
		counter(c.btreeWrites, float64(w.Count), uuid, writeType)
		gauge(c.btreeWriteSize, float64(w.SizeBytes), uuid, writeType)
	}
	for device, d := range s.Devices {
		if d == nil {
			continue
		}
		gauge(c.deviceInfo, 1, uuid, device, d.Label, d.State)
		gauge(c.bucketSize, float64(d.BucketSizeBytes), uuid, device)
		gauge(c.buckets, float64(d.Buckets), uuid, device)
		gauge(c.durability, float64(d.Durability), uuid, device)
		for op, byType := range d.IODone {
			for dataType, v := range byType {
				counter(c.ioDone, float64(v), uuid, device, op, dataType)
			}
		}
		for errorType, v := range d.IOErrors {
			counter(c.ioErrors, float64(v), uuid, device, errorType)
		}
	}
}
