package collectors

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() {
	register(Registration{
		Name:           "entropy",
		Layer:          LayerNode,
		DefaultEnabled: true,
		Setup: func(FlagApp) Factory {
			return func(env Env) (Collector, error) { return newEntropyCollector(env), nil }
		},
		KnownLintProblems: []LintException{
			inherited(`node_entropy_(available|pool_size)_bits`, `use base unit "bytes"`, "node_exporter counts entropy in bits, as the kernel does"),
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

func newEntropyCollector(env Env) *entropyCollector {
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
