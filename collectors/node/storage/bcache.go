package storage

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/bcache"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

// bcacheConfig holds the bcache collector's flags.
type bcacheConfig struct {
	priorityStats bool
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "bcache",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &bcacheConfig{}
			app.Flag("collector.bcache.priorityStats", "Expose expensive priority stats.").BoolVar(&cfg.priorityStats)
			return func(env collectors.Env) (collectors.Collector, error) { return newBcacheCollector(env, *cfg), nil }
		},
	})
}

// bcacheCollector serves /sys/fs/bcache/<cache set uuid>/ as node_exporter
// does: the cache set, each backing device (bdevN) and each cache device
// (cacheN). priority_stats walks every bucket in the kernel, hence off by
// default.
type bcacheCollector struct {
	sysPath       string
	priorityStats bool

	// Per cache set.
	averageKeySize, btreeCacheSize, cacheAvailable, congested, rootUsage, treeDepth *prometheus.Desc
	activeJournalEntries, btreeNodes, btreeReadAverage, cacheReadRaces              *prometheus.Desc
	// Per backing device.
	dirtyData, dirtyTarget, writebackRate, writebackProportional, writebackIntegral, writebackChange *prometheus.Desc
	bypassed, cacheHits, cacheMisses, bypassHits, bypassMisses, missCollisions, readaheads           *prometheus.Desc
	// Per cache device.
	ioErrors, metadataWritten, written, priorityUnused, priorityMetadata *prometheus.Desc
}

func newBcacheCollector(env collectors.Env, cfg bcacheConfig) *bcacheCollector {
	set := []string{"uuid"}
	bdev := []string{"uuid", "backing_device"}
	cache := []string{"uuid", "cache_device"}
	return &bcacheCollector{
		sysPath:       env.Paths.SysFS,
		priorityStats: cfg.priorityStats,

		averageKeySize: prometheus.NewDesc("node_bcache_average_key_size_sectors",
			"Average data per key in the btree (sectors).", set, nil),
		btreeCacheSize: prometheus.NewDesc("node_bcache_btree_cache_size_bytes",
			"Amount of memory currently used by the btree cache.", set, nil),
		cacheAvailable: prometheus.NewDesc("node_bcache_cache_available_percent",
			"Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).", set, nil),
		congested: prometheus.NewDesc("node_bcache_congested", "Congestion.", set, nil),
		rootUsage: prometheus.NewDesc("node_bcache_root_usage_percent",
			"Percentage of the root btree node in use (tree depth increases if too high).", set, nil),
		treeDepth: prometheus.NewDesc("node_bcache_tree_depth", "Depth of the btree.", set, nil),
		activeJournalEntries: prometheus.NewDesc("node_bcache_active_journal_entries",
			"Number of journal entries that are newer than the index.", set, nil),
		btreeNodes: prometheus.NewDesc("node_bcache_btree_nodes", "Total nodes in the btree.", set, nil),
		btreeReadAverage: prometheus.NewDesc("node_bcache_btree_read_average_duration_seconds",
			"Average btree read duration.", set, nil),
		cacheReadRaces: prometheus.NewDesc("node_bcache_cache_read_races_total",
			"Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.", set, nil),

		dirtyData: prometheus.NewDesc("node_bcache_dirty_data_bytes",
			"Amount of dirty data for this backing device in the cache.", bdev, nil),
		dirtyTarget: prometheus.NewDesc("node_bcache_dirty_target_bytes",
			"Current dirty data target threshold for this backing device in bytes.", bdev, nil),
		writebackRate: prometheus.NewDesc("node_bcache_writeback_rate",
			"Current writeback rate for this backing device in bytes.", bdev, nil),
		writebackProportional: prometheus.NewDesc("node_bcache_writeback_rate_proportional_term",
			"Current result of proportional controller, part of writeback rate", bdev, nil),
		writebackIntegral: prometheus.NewDesc("node_bcache_writeback_rate_integral_term",
			"Current result of integral controller, part of writeback rate", bdev, nil),
		writebackChange: prometheus.NewDesc("node_bcache_writeback_change",
			"Last writeback rate change step for this backing device.", bdev, nil),
		bypassed: prometheus.NewDesc("node_bcache_bypassed_bytes_total",
			"Amount of IO (both reads and writes) that has bypassed the cache.", bdev, nil),
		cacheHits: prometheus.NewDesc("node_bcache_cache_hits_total",
			"Hits counted per individual IO as bcache sees them.", bdev, nil),
		cacheMisses: prometheus.NewDesc("node_bcache_cache_misses_total",
			"Misses counted per individual IO as bcache sees them.", bdev, nil),
		bypassHits: prometheus.NewDesc("node_bcache_cache_bypass_hits_total",
			"Hits for IO intended to skip the cache.", bdev, nil),
		bypassMisses: prometheus.NewDesc("node_bcache_cache_bypass_misses_total",
			"Misses for IO intended to skip the cache.", bdev, nil),
		missCollisions: prometheus.NewDesc("node_bcache_cache_miss_collisions_total",
			"Instances where data insertion from cache miss raced with write (data already present).", bdev, nil),
		readaheads: prometheus.NewDesc("node_bcache_cache_readaheads_total",
			"Count of times readahead occurred.", bdev, nil),

		ioErrors: prometheus.NewDesc("node_bcache_io_errors",
			"Number of errors that have occurred, decayed by io_error_halflife.", cache, nil),
		metadataWritten: prometheus.NewDesc("node_bcache_metadata_written_bytes_total",
			"Sum of all non data writes (btree writes and all other metadata).", cache, nil),
		written: prometheus.NewDesc("node_bcache_written_bytes_total",
			"Sum of all data that has been written to the cache.", cache, nil),
		priorityUnused: prometheus.NewDesc("node_bcache_priority_stats_unused_percent",
			"The percentage of the cache that doesn't contain any data.", cache, nil),
		priorityMetadata: prometheus.NewDesc("node_bcache_priority_stats_metadata_percent",
			"Bcache's metadata overhead.", cache, nil),
	}
}

func (c *bcacheCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	pattern := filepath.Join(c.sysPath, "fs/bcache/*-*")
	n, err := hostfile.EachMatch(ctx, pattern, func(dir string) error {
		s, err := c.readCacheSet(dir)
		if err != nil {
			return err
		}
		c.send(ch, filepath.Base(dir), s)
		return nil
	})
	if n == 0 && err == nil {
		return fmt.Errorf("%w: no bcache cache set in %s", collectors.ErrNoData, filepath.Dir(pattern))
	}
	return err
}

func (c *bcacheCollector) readCacheSet(dir string) (s *bcache.Stats, err error) {
	defer hostfile.GuardProcfs(dir, &err)
	s, err = bcache.GetStats(dir, c.priorityStats)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	return s, nil
}

func (c *bcacheCollector) send(ch chan<- prometheus.Metric, uuid string, s *bcache.Stats) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	b := s.Bcache
	gauge(c.averageKeySize, float64(b.AverageKeySize), uuid)
	gauge(c.btreeCacheSize, float64(b.BtreeCacheSize), uuid)
	gauge(c.cacheAvailable, float64(b.CacheAvailablePercent), uuid)
	gauge(c.congested, float64(b.Congested), uuid)
	gauge(c.rootUsage, float64(b.RootUsagePercent), uuid)
	gauge(c.treeDepth, float64(b.TreeDepth), uuid)
	gauge(c.activeJournalEntries, float64(b.Internal.ActiveJournalEntries), uuid)
	gauge(c.btreeNodes, float64(b.Internal.BtreeNodes), uuid)
	// The kernel's btree_read_average_duration_us is in microseconds.
	// node_exporter 1.12 scales it as nanoseconds, 1000 times too small;
	// this serves seconds (see docs/node-collectors.md).
	gauge(c.btreeReadAverage, float64(b.Internal.BtreeReadAverageDurationMicroSeconds)*1e-6, uuid)
	counter(c.cacheReadRaces, float64(b.Internal.CacheReadRaces), uuid)

	for _, d := range s.Bdevs {
		gauge(c.dirtyData, float64(d.DirtyData), uuid, d.Name)
		gauge(c.dirtyTarget, float64(d.WritebackRateDebug.Target), uuid, d.Name)
		gauge(c.writebackRate, float64(d.WritebackRateDebug.Rate), uuid, d.Name)
		gauge(c.writebackProportional, float64(d.WritebackRateDebug.Proportional), uuid, d.Name)
		gauge(c.writebackIntegral, float64(d.WritebackRateDebug.Integral), uuid, d.Name)
		gauge(c.writebackChange, float64(d.WritebackRateDebug.Change), uuid, d.Name)
		t := d.Total
		counter(c.bypassed, float64(t.Bypassed), uuid, d.Name)
		counter(c.cacheHits, float64(t.CacheHits), uuid, d.Name)
		counter(c.cacheMisses, float64(t.CacheMisses), uuid, d.Name)
		counter(c.bypassHits, float64(t.CacheBypassHits), uuid, d.Name)
		counter(c.bypassMisses, float64(t.CacheBypassMisses), uuid, d.Name)
		counter(c.missCollisions, float64(t.CacheMissCollisions), uuid, d.Name)
		// Kernels since 4.x no longer count readaheads; node_exporter
		// leaves the series out while it reads zero.
		if t.CacheReadaheads != 0 {
			counter(c.readaheads, float64(t.CacheReadaheads), uuid, d.Name)
		}
	}
	for _, d := range s.Caches {
		gauge(c.ioErrors, float64(d.IOErrors), uuid, d.Name)
		counter(c.metadataWritten, float64(d.MetadataWritten), uuid, d.Name)
		counter(c.written, float64(d.Written), uuid, d.Name)
		if c.priorityStats {
			gauge(c.priorityUnused, float64(d.Priority.UnusedPercent), uuid, d.Name)
			gauge(c.priorityMetadata, float64(d.Priority.MetadataPercent), uuid, d.Name)
		}
	}
}
