package node

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
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
	proc            procfs.FS
	path            string
	avail, poolSize *prometheus.Desc
}

func newEntropyCollector(env collectors.Env) *entropyCollector {
	return &entropyCollector{
		proc:     env.Proc,
		path:     filepath.Join(env.Paths.ProcFS, "sys", "kernel", "random"),
		avail:    prometheus.NewDesc("node_entropy_available_bits", "Bits of available entropy.", nil, nil),
		poolSize: prometheus.NewDesc("node_entropy_pool_size_bits", "Bits of entropy pool.", nil, nil),
	}
}

func (c *entropyCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	r, err := c.proc.KernelRandom()
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.path, err)
	}
	if r.EntropyAvaliable == nil {
		return fmt.Errorf("reading %s: no entropy_avail", c.path)
	}
	ch <- prometheus.MustNewConstMetric(c.avail, prometheus.GaugeValue, float64(*r.EntropyAvaliable))
	if r.PoolSize == nil {
		return fmt.Errorf("reading %s: no poolsize", c.path)
	}
	ch <- prometheus.MustNewConstMetric(c.poolSize, prometheus.GaugeValue, float64(*r.PoolSize))
	return nil
}
