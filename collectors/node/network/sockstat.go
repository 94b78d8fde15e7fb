package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/descs"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "sockstat",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newSockstatCollector(env), nil }
		},
	})
}

// sockstatCollector serves <procfs>/net/sockstat and sockstat6 as
// node_exporter does: node_sockstat_sockets_used and
// node_sockstat_<PROTOCOL>_<field> (node_sockstat_TCP_inuse,
// node_sockstat_TCP_tw, node_sockstat_TCP_mem_bytes, node_sockstat_UDP6_inuse…).
type sockstatCollector struct {
	proc     procfs.FS
	procPath string
	logger   *slog.Logger
	pageSize int
	mu       sync.Mutex
	served   map[string]*family // by Protocol_field
}

func newSockstatCollector(env collectors.Env) *sockstatCollector {
	return &sockstatCollector{
		proc:     env.Proc,
		procPath: env.Paths.ProcFS,
		logger:   env.Logger,
		pageSize: os.Getpagesize(),
		served:   map[string]*family{},
	}
}

func (c *sockstatCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the counts as compact families, one series each.
func (c *sockstatCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b collectors.CompactBuilder
	for _, f := range []struct {
		file string
		read func() (*procfs.NetSockstat, error)
	}{
		{"sockstat", c.proc.NetSockstat},
		{"sockstat6", c.proc.NetSockstat6},
	} {
		path := filepath.Join(c.procPath, "net", f.file)
		s, err := f.read()
		switch {
		case errors.Is(err, fs.ErrNotExist):
			// IPv4 or IPv6 is disabled on this kernel.
			c.logger.Debug("sockstat statistics not found, skipping", "path", path)
			continue
		case err != nil:
			return b.Families(), fmt.Errorf("reading %s: %w", path, err)
		}
		if err := c.add(&b, path, s); err != nil {
			return b.Families(), err
		}
	}
	return b.Families(), nil
}

func (c *sockstatCollector) add(b *collectors.CompactBuilder, path string, s *procfs.NetSockstat) error {
	// Only sockstat (IPv4) has the "sockets: used" line.
	if s.Used != nil {
		b.Add("node_sockstat_sockets_used", "Number of IPv4 sockets in use.", dto.MetricType_GAUGE, nil, float64(*s.Used))
	}
	for _, p := range s.Protocols {
		if !descs.IsMetricNamePart([]byte(p.Protocol)) {
			return fmt.Errorf("reading %s: protocol %q", path, p.Protocol)
		}
		fields := []struct {
			name string
			v    *int
		}{
			{"inuse", &p.InUse}, {"orphan", p.Orphan}, {"tw", p.TW}, {"alloc", p.Alloc}, {"mem", p.Mem}, {"memory", p.Memory},
		}
		if p.Mem != nil {
			// mem is in pages; node_exporter adds it in bytes.
			b := *p.Mem * c.pageSize
			fields = append(fields, struct {
				name string
				v    *int
			}{"mem_bytes", &b})
		}
		for _, f := range fields {
			if f.v == nil {
				continue
			}
			key := p.Protocol + "_" + f.name
			fam, ok := c.served[key]
			if !ok {
				fam = &family{"node_sockstat_" + key, fmt.Sprintf("Number of %s sockets in state %s.", p.Protocol, f.name)}
				c.served[key] = fam
			}
			b.Add(fam.name, fam.help, dto.MetricType_GAUGE, nil, float64(*f.v))
		}
	}
	return nil
}
