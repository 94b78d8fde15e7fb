package node

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "meminfo",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newMeminfoCollector(env), nil }
		},
		KnownLintProblems: []collectors.LintException{
			collectors.Inherited(`node_memory_.*`, "camelCase", "node_exporter names meminfo series after /proc/meminfo's keys"),
		},
	})
}

// meminfoField is one /proc/meminfo key as node_exporter serves it.
type meminfoField struct {
	name, help string
	value      func(*procfs.Meminfo) *uint64
}

// meminfoCollector serves /proc/meminfo as node_exporter 1.12 does: the
// keys procfs knows, in bytes (kB × 1024), except the HugePages_* counts.
// node_exporter 1.12 serves exactly this set, not every key of the file;
// keys it does not know (KReclaimable, FilePmdMapped…) are not served.
type meminfoCollector struct {
	proc     procfs.FS
	procPath string
	fields   []meminfoField
}

func newMeminfoCollector(env collectors.Env) *meminfoCollector {
	c := &meminfoCollector{proc: env.Proc, procPath: env.Paths.ProcFS}
	add := func(name string, value func(*procfs.Meminfo) *uint64) {
		// node_exporter's help names the field: the metric name less its prefix.
		help := fmt.Sprintf("Memory information field %s.", strings.TrimPrefix(name, "node_memory_"))
		c.fields = append(c.fields, meminfoField{name, help, value})
	}
	add("node_memory_Active_bytes", func(m *procfs.Meminfo) *uint64 { return m.ActiveBytes })
	add("node_memory_Active_anon_bytes", func(m *procfs.Meminfo) *uint64 { return m.ActiveAnonBytes })
	add("node_memory_Active_file_bytes", func(m *procfs.Meminfo) *uint64 { return m.ActiveFileBytes })
	add("node_memory_AnonHugePages_bytes", func(m *procfs.Meminfo) *uint64 { return m.AnonHugePagesBytes })
	add("node_memory_AnonPages_bytes", func(m *procfs.Meminfo) *uint64 { return m.AnonPagesBytes })
	add("node_memory_Bounce_bytes", func(m *procfs.Meminfo) *uint64 { return m.BounceBytes })
	add("node_memory_Buffers_bytes", func(m *procfs.Meminfo) *uint64 { return m.BuffersBytes })
	add("node_memory_Cached_bytes", func(m *procfs.Meminfo) *uint64 { return m.CachedBytes })
	add("node_memory_CmaFree_bytes", func(m *procfs.Meminfo) *uint64 { return m.CmaFreeBytes })
	add("node_memory_CmaTotal_bytes", func(m *procfs.Meminfo) *uint64 { return m.CmaTotalBytes })
	add("node_memory_CommitLimit_bytes", func(m *procfs.Meminfo) *uint64 { return m.CommitLimitBytes })
	add("node_memory_Committed_AS_bytes", func(m *procfs.Meminfo) *uint64 { return m.CommittedASBytes })
	add("node_memory_DirectMap1G_bytes", func(m *procfs.Meminfo) *uint64 { return m.DirectMap1GBytes })
	add("node_memory_DirectMap2M_bytes", func(m *procfs.Meminfo) *uint64 { return m.DirectMap2MBytes })
	add("node_memory_DirectMap4k_bytes", func(m *procfs.Meminfo) *uint64 { return m.DirectMap4kBytes })
	add("node_memory_Dirty_bytes", func(m *procfs.Meminfo) *uint64 { return m.DirtyBytes })
	add("node_memory_HardwareCorrupted_bytes", func(m *procfs.Meminfo) *uint64 { return m.HardwareCorruptedBytes })
	add("node_memory_Hugepagesize_bytes", func(m *procfs.Meminfo) *uint64 { return m.HugepagesizeBytes })
	add("node_memory_Inactive_bytes", func(m *procfs.Meminfo) *uint64 { return m.InactiveBytes })
	add("node_memory_Inactive_anon_bytes", func(m *procfs.Meminfo) *uint64 { return m.InactiveAnonBytes })
	add("node_memory_Inactive_file_bytes", func(m *procfs.Meminfo) *uint64 { return m.InactiveFileBytes })
	add("node_memory_KernelStack_bytes", func(m *procfs.Meminfo) *uint64 { return m.KernelStackBytes })
	add("node_memory_Mapped_bytes", func(m *procfs.Meminfo) *uint64 { return m.MappedBytes })
	add("node_memory_MemAvailable_bytes", func(m *procfs.Meminfo) *uint64 { return m.MemAvailableBytes })
	add("node_memory_MemFree_bytes", func(m *procfs.Meminfo) *uint64 { return m.MemFreeBytes })
	add("node_memory_MemTotal_bytes", func(m *procfs.Meminfo) *uint64 { return m.MemTotalBytes })
	add("node_memory_Mlocked_bytes", func(m *procfs.Meminfo) *uint64 { return m.MlockedBytes })
	add("node_memory_NFS_Unstable_bytes", func(m *procfs.Meminfo) *uint64 { return m.NFSUnstableBytes })
	add("node_memory_PageTables_bytes", func(m *procfs.Meminfo) *uint64 { return m.PageTablesBytes })
	add("node_memory_Percpu_bytes", func(m *procfs.Meminfo) *uint64 { return m.PercpuBytes })
	add("node_memory_SReclaimable_bytes", func(m *procfs.Meminfo) *uint64 { return m.SReclaimableBytes })
	add("node_memory_SUnreclaim_bytes", func(m *procfs.Meminfo) *uint64 { return m.SUnreclaimBytes })
	add("node_memory_Shmem_bytes", func(m *procfs.Meminfo) *uint64 { return m.ShmemBytes })
	add("node_memory_ShmemHugePages_bytes", func(m *procfs.Meminfo) *uint64 { return m.ShmemHugePagesBytes })
	add("node_memory_ShmemPmdMapped_bytes", func(m *procfs.Meminfo) *uint64 { return m.ShmemPmdMappedBytes })
	add("node_memory_Slab_bytes", func(m *procfs.Meminfo) *uint64 { return m.SlabBytes })
	add("node_memory_SwapCached_bytes", func(m *procfs.Meminfo) *uint64 { return m.SwapCachedBytes })
	add("node_memory_SwapFree_bytes", func(m *procfs.Meminfo) *uint64 { return m.SwapFreeBytes })
	add("node_memory_SwapTotal_bytes", func(m *procfs.Meminfo) *uint64 { return m.SwapTotalBytes })
	add("node_memory_Unevictable_bytes", func(m *procfs.Meminfo) *uint64 { return m.UnevictableBytes })
	add("node_memory_VmallocChunk_bytes", func(m *procfs.Meminfo) *uint64 { return m.VmallocChunkBytes })
	add("node_memory_VmallocTotal_bytes", func(m *procfs.Meminfo) *uint64 { return m.VmallocTotalBytes })
	add("node_memory_VmallocUsed_bytes", func(m *procfs.Meminfo) *uint64 { return m.VmallocUsedBytes })
	add("node_memory_Writeback_bytes", func(m *procfs.Meminfo) *uint64 { return m.WritebackBytes })
	add("node_memory_WritebackTmp_bytes", func(m *procfs.Meminfo) *uint64 { return m.WritebackTmpBytes })
	add("node_memory_Zswap_bytes", func(m *procfs.Meminfo) *uint64 { return m.ZswapBytes })
	add("node_memory_Zswapped_bytes", func(m *procfs.Meminfo) *uint64 { return m.ZswappedBytes })
	// Page counts, not sizes: served as read, without a unit.
	add("node_memory_HugePages_Free", func(m *procfs.Meminfo) *uint64 { return m.HugePagesFree })
	add("node_memory_HugePages_Rsvd", func(m *procfs.Meminfo) *uint64 { return m.HugePagesRsvd })
	add("node_memory_HugePages_Surp", func(m *procfs.Meminfo) *uint64 { return m.HugePagesSurp })
	add("node_memory_HugePages_Total", func(m *procfs.Meminfo) *uint64 { return m.HugePagesTotal })
	return c
}

func (c *meminfoCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the fields as compact families (some fifty series
// without labels).
func (c *meminfoCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	m, err := c.proc.Meminfo()
	if err != nil {
		return nil, fmt.Errorf("reading %s/meminfo: %w", c.procPath, err)
	}
	fams := make([]*exposition.CompactFamily, 0, len(c.fields))
	for _, f := range c.fields {
		if v := f.value(&m); v != nil {
			fams = append(fams, &exposition.CompactFamily{Name: f.name, Help: f.help, Type: dto.MetricType_GAUGE,
				Labels: noLabels, Values: []float64{float64(*v)}})
		}
	}
	return fams, nil
}

// noLabels is the label sets of a family of one series without labels,
// shared by every such family and never modified.
var noLabels = []*exposition.LabelSet{nil}

// family is the name and help of a family of compact series.
type family struct{ name, help string }
