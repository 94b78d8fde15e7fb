package storage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/xfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "xfs",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newXFSCollector(env) }
		},
	})
}

// xfsCollector serves the per-filesystem counters of
// /sys/fs/xfs/<device>/stats/stats (kernel 4.4+) as node_exporter does: a
// subset of the XFS runtime statistics, named after the XFS wiki's
// categories, every series a counter labelled by device.
type xfsCollector struct {
	sysPath string
	metrics []xfsMetric
}

// xfsMetric is one series per filesystem and the counter it reads.
type xfsMetric struct {
	desc  *prometheus.Desc
	value func(*xfs.Stats) uint32
}

func newXFSCollector(env collectors.Env) (*xfsCollector, error) {
	labels := []string{"device"}
	return &xfsCollector{sysPath: env.Paths.SysFS, metrics: []xfsMetric{
		{prometheus.NewDesc("node_xfs_extent_allocation_extents_allocated_total",
			"Number of extents allocated for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.ExtentAllocation.ExtentsAllocated }},
		{prometheus.NewDesc("node_xfs_extent_allocation_blocks_allocated_total",
			"Number of blocks allocated for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.ExtentAllocation.BlocksAllocated }},
		{prometheus.NewDesc("node_xfs_extent_allocation_extents_freed_total",
			"Number of extents freed for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.ExtentAllocation.ExtentsFreed }},
		{prometheus.NewDesc("node_xfs_extent_allocation_blocks_freed_total",
			"Number of blocks freed for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.ExtentAllocation.BlocksFreed }},
		{prometheus.NewDesc("node_xfs_allocation_btree_lookups_total",
			"Number of allocation B-tree lookups for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.AllocationBTree.Lookups }},
		{prometheus.NewDesc("node_xfs_allocation_btree_compares_total",
			"Number of allocation B-tree compares for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.AllocationBTree.Compares }},
		{prometheus.NewDesc("node_xfs_allocation_btree_records_inserted_total",
			"Number of allocation B-tree records inserted for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.AllocationBTree.RecordsInserted }},
		{prometheus.NewDesc("node_xfs_allocation_btree_records_deleted_total",
			"Number of allocation B-tree records deleted for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.AllocationBTree.RecordsDeleted }},
		{prometheus.NewDesc("node_xfs_block_mapping_reads_total",
			"Number of block map for read operations for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapping.Reads }},
		{prometheus.NewDesc("node_xfs_block_mapping_writes_total",
			"Number of block map for write operations for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapping.Writes }},
		{prometheus.NewDesc("node_xfs_block_mapping_unmaps_total",
			"Number of block unmaps (deletes) for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapping.Unmaps }},
		{prometheus.NewDesc("node_xfs_block_mapping_extent_list_insertions_total",
			"Number of extent list insertions for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapping.ExtentListInsertions }},
		{prometheus.NewDesc("node_xfs_block_mapping_extent_list_deletions_total",
			"Number of extent list deletions for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapping.ExtentListDeletions }},
		{prometheus.NewDesc("node_xfs_block_mapping_extent_list_lookups_total",
			"Number of extent list lookups for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapping.ExtentListLookups }},
		{prometheus.NewDesc("node_xfs_block_mapping_extent_list_compares_total",
			"Number of extent list compares for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapping.ExtentListCompares }},
		{prometheus.NewDesc("node_xfs_block_map_btree_lookups_total",
			"Number of block map B-tree lookups for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapBTree.Lookups }},
		{prometheus.NewDesc("node_xfs_block_map_btree_compares_total",
			"Number of block map B-tree compares for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapBTree.Compares }},
		{prometheus.NewDesc("node_xfs_block_map_btree_records_inserted_total",
			"Number of block map B-tree records inserted for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapBTree.RecordsInserted }},
		{prometheus.NewDesc("node_xfs_block_map_btree_records_deleted_total",
			"Number of block map B-tree records deleted for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.BlockMapBTree.RecordsDeleted }},
		{prometheus.NewDesc("node_xfs_directory_operation_lookup_total",
			"Number of file name directory lookups which miss the operating systems directory name lookup cache.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.DirectoryOperation.Lookups }},
		{prometheus.NewDesc("node_xfs_directory_operation_create_total",
			"Number of times a new directory entry was created for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.DirectoryOperation.Creates }},
		{prometheus.NewDesc("node_xfs_directory_operation_remove_total",
			"Number of times an existing directory entry was created for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.DirectoryOperation.Removes }},
		{prometheus.NewDesc("node_xfs_directory_operation_getdents_total",
			"Number of times the directory getdents operation was performed for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.DirectoryOperation.Getdents }},
		{prometheus.NewDesc("node_xfs_inode_operation_attempts_total",
			"Number of times the OS looked for an XFS inode in the inode cache.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.InodeOperation.Attempts }},
		{prometheus.NewDesc("node_xfs_inode_operation_found_total",
			"Number of times the OS looked for and found an XFS inode in the inode cache.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.InodeOperation.Found }},
		{prometheus.NewDesc("node_xfs_inode_operation_recycled_total",
			"Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.InodeOperation.Recycle }},
		{prometheus.NewDesc("node_xfs_inode_operation_missed_total",
			"Number of times the OS looked for an XFS inode in the cache, but did not find it.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.InodeOperation.Missed }},
		{prometheus.NewDesc("node_xfs_inode_operation_duplicates_total",
			"Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.InodeOperation.Duplicate }},
		{prometheus.NewDesc("node_xfs_inode_operation_reclaims_total",
			"Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.InodeOperation.Reclaims }},
		{prometheus.NewDesc("node_xfs_inode_operation_attribute_changes_total",
			"Number of times the OS explicitly changed the attributes of an XFS inode.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.InodeOperation.AttributeChange }},
		{prometheus.NewDesc("node_xfs_read_calls_total",
			"Number of read(2) system calls made to files in a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.ReadWrite.Read }},
		{prometheus.NewDesc("node_xfs_write_calls_total",
			"Number of write(2) system calls made to files in a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.ReadWrite.Write }},
		{prometheus.NewDesc("node_xfs_vnode_active_total",
			"Number of vnodes not on free lists for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.Vnode.Active }},
		{prometheus.NewDesc("node_xfs_vnode_allocate_total",
			"Number of times vn_alloc called for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.Vnode.Allocate }},
		{prometheus.NewDesc("node_xfs_vnode_get_total",
			"Number of times vn_get called for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.Vnode.Get }},
		{prometheus.NewDesc("node_xfs_vnode_hold_total",
			"Number of times vn_hold called for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.Vnode.Hold }},
		{prometheus.NewDesc("node_xfs_vnode_release_total",
			"Number of times vn_rele called for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.Vnode.Release }},
		{prometheus.NewDesc("node_xfs_vnode_reclaim_total",
			"Number of times vn_reclaim called for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.Vnode.Reclaim }},
		{prometheus.NewDesc("node_xfs_vnode_remove_total",
			"Number of times vn_remove called for a filesystem.", labels, nil),
			func(s *xfs.Stats) uint32 { return s.Vnode.Remove }},
	}}, nil
}

func (c *xfsCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	pattern := filepath.Join(c.sysPath, "fs/xfs/*/stats/stats")
	n, err := hostfile.EachMatch(ctx, pattern, func(path string) error {
		s, err := readXFSStats(path)
		if err != nil {
			return err
		}
		// The directory above stats/ is the filesystem's device name.
		device := filepath.Base(filepath.Dir(filepath.Dir(path)))
		for _, m := range c.metrics {
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(m.value(s)), device)
		}
		return nil
	})
	if n == 0 && err == nil {
		return fmt.Errorf("%w: no XFS filesystem mounted (%s)", collectors.ErrNoData, pattern)
	}
	return err
}

func readXFSStats(path string) (*xfs.Stats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s, err := xfs.ParseStats(f)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return s, nil
}
