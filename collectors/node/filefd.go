package node

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "filefd",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newFilefdCollector(env), nil }
		},
	})
}

// filefdCollector serves /proc/sys/fs/file-nr as node_exporter does.
// procfs has no reader for it, hence parseFileNr.
type filefdCollector struct {
	file               *hostfile.ProcFile // kept open between scrapes
	allocated, maximum *collectors.CompactDesc
}

func newFilefdCollector(env collectors.Env) *filefdCollector {
	return &filefdCollector{
		file:      hostfile.NewProcFile(filepath.Join(env.Paths.ProcFS, "sys", "fs", "file-nr")),
		allocated: collectors.NewCompactDesc("node_filefd_allocated", "File descriptor statistics: allocated.", dto.MetricType_GAUGE),
		maximum:   collectors.NewCompactDesc("node_filefd_maximum", "File descriptor statistics: maximum.", dto.MetricType_GAUGE),
	}
}

func (c *filefdCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the same series in compact form.
func (c *filefdCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	nr, err := c.file.Read()
	if err != nil {
		return nil, err
	}
	allocated, maximum, err := parseFileNr(nr)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", c.file.Path(), err)
	}
	b.AddValues(c.allocated, allocated)
	b.AddValues(c.maximum, maximum)
	return b.Families(), nil
}

// parseFileNr parses /proc/sys/fs/file-nr: allocated file handles, free
// allocated ones (always 0 since Linux 2.6) and the maximum, tab-separated:
//
//	9632	0	9223372036854775807
func parseFileNr(b []byte) (allocated, maximum float64, err error) {
	f := bytes.Fields(b)
	if len(f) != 3 {
		return 0, 0, fmt.Errorf("want 3 numbers, got %q", b)
	}
	if allocated, err = strconv.ParseFloat(string(f[0]), 64); err != nil {
		return 0, 0, fmt.Errorf("allocated: %w", err)
	}
	if maximum, err = strconv.ParseFloat(string(f[2]), 64); err != nil {
		return 0, 0, fmt.Errorf("maximum: %w", err)
	}
	return allocated, maximum, nil
}
