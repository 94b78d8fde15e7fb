package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "entropy",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newEntropyCollector(env), nil }
		},
		KnownLintProblems: []collectors.LintException{
			collectors.Inherited(`node_entropy_(available|pool_size)_bits`, `use base unit "bytes"`, "node_exporter counts entropy in bits, as the kernel does"),
		},
	})
}

// entropyCollector serves /proc/sys/kernel/random's entropy_avail and
// poolsize as node_exporter does; both files have been there since Linux
// 2.6, so either missing is an error.
type entropyCollector struct {
	path string
	// entropy_avail and poolsize are kept open between scrapes
	// (hostfile.ProcFile). procfs' KernelRandom would open five files, of
	// which node_exporter's two families need two.
	availFile, poolSizeFile *hostfile.ProcFile
	avail, poolSize         *collectors.CompactDesc
}

func newEntropyCollector(env collectors.Env) *entropyCollector {
	path := filepath.Join(env.Paths.ProcFS, "sys", "kernel", "random")
	return &entropyCollector{
		path:         path,
		availFile:    hostfile.NewProcFile(filepath.Join(path, "entropy_avail")),
		poolSizeFile: hostfile.NewProcFile(filepath.Join(path, "poolsize")),
		avail:        collectors.NewCompactDesc("node_entropy_available_bits", "Bits of available entropy.", dto.MetricType_GAUGE),
		poolSize:     collectors.NewCompactDesc("node_entropy_pool_size_bits", "Bits of entropy pool.", dto.MetricType_GAUGE),
	}
}

func (c *entropyCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the same series in compact form.
func (c *entropyCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	avail, err := c.readUint(c.availFile, "entropy_avail")
	if err != nil {
		return b.Families(), err
	}
	b.AddValues(c.avail, float64(avail))
	poolSize, err := c.readUint(c.poolSizeFile, "poolsize")
	if err != nil {
		return b.Families(), err
	}
	b.AddValues(c.poolSize, float64(poolSize))
	return b.Families(), nil
}

// readUint reads one of the files, with the errors procfs' KernelRandom
// gave: "no <file>" when it is absent.
func (c *entropyCollector) readUint(f *hostfile.ProcFile, name string) (uint64, error) {
	b, err := f.Read()
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("reading %s: no %s", c.path, name)
	}
	if err != nil {
		return 0, err
	}
	v, err := hostfile.ParseUint(b)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", c.path, err)
	}
	return v, nil
}
