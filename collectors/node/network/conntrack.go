package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "conntrack",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newConntrackCollector(env), nil }
		},
	})
}

// conntrackCollector serves the netfilter connection-tracking table size
// and limit from /proc/sys/net/netfilter and its statistics from
// /proc/net/stat/nf_conntrack, summed over CPUs. Both are per network
// namespace: the agent sees the host's only when it runs in it.
type conntrackCollector struct {
	proc     procfs.FS
	procPath string
	// sysctls are nf_conntrack_count and _max, kept open between scrapes
	// (hostfile.ProcFile), by their sysctl names.
	sysctls map[string]*hostfile.ProcFile
	logger  *slog.Logger

	entries, limit                               *collectors.CompactDesc
	found, invalid, ignore, insert, insertFailed *collectors.CompactDesc
	drop, earlyDrop, searchRestart               *collectors.CompactDesc
}

func newConntrackCollector(env collectors.Env) *conntrackCollector {
	// node_exporter serves even the counters as gauges; so do we.
	d := func(name, help string) *collectors.CompactDesc {
		return collectors.NewCompactDesc(name, help, dto.MetricType_GAUGE)
	}
	return &conntrackCollector{
		proc:     env.Proc,
		procPath: env.Paths.ProcFS,
		sysctls: map[string]*hostfile.ProcFile{
			"net.netfilter.nf_conntrack_count": hostfile.NewProcFile(filepath.Join(env.Paths.ProcFS, "sys", "net", "netfilter", "nf_conntrack_count")),
			"net.netfilter.nf_conntrack_max":   hostfile.NewProcFile(filepath.Join(env.Paths.ProcFS, "sys", "net", "netfilter", "nf_conntrack_max")),
		},
		logger:        env.Logger,
		entries:       d("node_nf_conntrack_entries", "Number of currently allocated flow entries for connection tracking."),
		limit:         d("node_nf_conntrack_entries_limit", "Maximum size of connection tracking table."),
		found:         d("node_nf_conntrack_stat_found", "Number of searched entries which were successful."),
		invalid:       d("node_nf_conntrack_stat_invalid", "Number of packets seen which can not be tracked."),
		ignore:        d("node_nf_conntrack_stat_ignore", "Number of packets seen which are already connected to a conntrack entry."),
		insert:        d("node_nf_conntrack_stat_insert", "Number of entries inserted into the list."),
		insertFailed:  d("node_nf_conntrack_stat_insert_failed", "Number of entries for which list insertion was attempted but failed."),
		drop:          d("node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure."),
		earlyDrop:     d("node_nf_conntrack_stat_early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."),
		searchRestart: d("node_nf_conntrack_stat_search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
	}
}

func (c *conntrackCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the same series in compact form.
func (c *conntrackCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	count, err := c.sysctlUint("net.netfilter.nf_conntrack_count")
	if err != nil {
		return b.Families(), c.classify(err)
	}
	b.AddValues(c.entries, float64(count))
	limit, err := c.sysctlUint("net.netfilter.nf_conntrack_max")
	if err != nil {
		return b.Families(), c.classify(err)
	}
	b.AddValues(c.limit, float64(limit))

	perCPU, err := c.proc.ConntrackStat()
	if err != nil {
		return b.Families(), c.classify(fmt.Errorf("reading %s/net/stat/nf_conntrack: %w", c.procPath, err))
	}
	var sum procfs.ConntrackStatEntry
	for _, s := range perCPU {
		sum.Found += s.Found
		sum.Invalid += s.Invalid
		sum.Ignore += s.Ignore
		sum.Insert += s.Insert
		sum.InsertFailed += s.InsertFailed
		sum.Drop += s.Drop
		sum.EarlyDrop += s.EarlyDrop
		sum.SearchRestart += s.SearchRestart
	}
	for _, m := range []struct {
		desc *collectors.CompactDesc
		v    uint64
	}{
		{c.found, sum.Found}, {c.invalid, sum.Invalid}, {c.ignore, sum.Ignore},
		{c.insert, sum.Insert}, {c.insertFailed, sum.InsertFailed}, {c.drop, sum.Drop},
		{c.earlyDrop, sum.EarlyDrop}, {c.searchRestart, sum.SearchRestart},
	} {
		b.AddValues(m.desc, float64(m.v))
	}
	return b.Families(), nil
}

// sysctlUint reads a sysctl holding one unsigned decimal number.
func (c *conntrackCollector) sysctlUint(name string) (uint64, error) {
	f := c.sysctls[name]
	b, err := f.Read()
	if err != nil {
		return 0, fmt.Errorf("reading sysctl %s under %s: %w", name, c.procPath, err)
	}
	fields := strings.Fields(string(b))
	if len(fields) != 1 {
		return 0, fmt.Errorf("sysctl %s under %s: want one number, got %q", name, c.procPath, fields)
	}
	v, err := strconv.ParseUint(fields[0], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("sysctl %s under %s: %w", name, c.procPath, err)
	}
	return v, nil
}

// classify turns a missing file (the nf_conntrack module is not loaded) into
// ErrNoData.
func (c *conntrackCollector) classify(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		c.logger.Debug("conntrack: nf_conntrack is probably not loaded", "err", err)
		return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	return err
}
