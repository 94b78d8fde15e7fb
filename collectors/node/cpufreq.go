package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "cpufreq",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newCPUFreqCollector(env), nil }
		},
	})
}

// cpufreqCollector serves /sys/devices/system/cpu/cpu*/cpufreq as
// node_exporter does: frequencies in hertz (sysfs has kHz) and the scaling
// governor. Offline CPUs and CPUs without cpufreq (most VMs) serve nothing.
type cpufreqCollector struct {
	sys      sysfs.FS
	path     string
	freqs    []cpufreqStat
	governor *prometheus.Desc
}

type cpufreqStat struct {
	desc  *prometheus.Desc
	value func(*sysfs.SystemCPUCpufreqStats) *uint64
}

func newCPUFreqCollector(env collectors.Env) *cpufreqCollector {
	c := &cpufreqCollector{
		sys:  env.Sys,
		path: filepath.Join(env.Paths.SysFS, "devices", "system", "cpu"),
		governor: prometheus.NewDesc("node_cpu_scaling_governor", "Current enabled CPU frequency governor.",
			[]string{"cpu", "governor"}, nil),
	}
	stat := func(name, help string, value func(*sysfs.SystemCPUCpufreqStats) *uint64) {
		c.freqs = append(c.freqs, cpufreqStat{prometheus.NewDesc(name, help, []string{"cpu"}, nil), value})
	}
	stat("node_cpu_frequency_hertz", "Current CPU thread frequency in hertz.",
		func(s *sysfs.SystemCPUCpufreqStats) *uint64 { return s.CpuinfoCurrentFrequency })
	stat("node_cpu_frequency_avg_hertz", "Average CPU thread frequency in hertz.",
		func(s *sysfs.SystemCPUCpufreqStats) *uint64 { return s.CpuinfoAverageFrequency })
	stat("node_cpu_frequency_min_hertz", "Minimum CPU thread frequency in hertz.",
		func(s *sysfs.SystemCPUCpufreqStats) *uint64 { return s.CpuinfoMinimumFrequency })
	stat("node_cpu_frequency_max_hertz", "Maximum CPU thread frequency in hertz.",
		func(s *sysfs.SystemCPUCpufreqStats) *uint64 { return s.CpuinfoMaximumFrequency })
	stat("node_cpu_scaling_frequency_hertz", "Current scaled CPU thread frequency in hertz.",
		func(s *sysfs.SystemCPUCpufreqStats) *uint64 { return s.ScalingCurrentFrequency })
	stat("node_cpu_scaling_frequency_min_hertz", "Minimum scaled CPU thread frequency in hertz.",
		func(s *sysfs.SystemCPUCpufreqStats) *uint64 { return s.ScalingMinimumFrequency })
	stat("node_cpu_scaling_frequency_max_hertz", "Maximum scaled CPU thread frequency in hertz.",
		func(s *sysfs.SystemCPUCpufreqStats) *uint64 { return s.ScalingMaximumFrequency })
	return c
}

func (c *cpufreqCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	cpus, err := c.sys.SystemCpufreq()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: reading cpufreq below %s: %w", collectors.ErrNoData, c.path, err)
	case err != nil:
		return fmt.Errorf("reading cpufreq below %s: %w", c.path, err)
	}
	served := 0
	for i := range cpus {
		s := &cpus[i]
		if s.Name == "" {
			continue // an offline CPU or one without cpufreq
		}
		served++
		for _, f := range c.freqs {
			if v := f.value(s); v != nil {
				ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, float64(*v)*1000.0, s.Name)
			}
		}
		if s.Governor == "" {
			continue
		}
		for _, g := range strings.Split(s.AvailableGovernors, " ") {
			v := 0.0
			if g == s.Governor {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.governor, prometheus.GaugeValue, v, s.Name, hostfile.ValidLabel(g))
		}
	}
	if served == 0 {
		// Most VMs: no cpufreq driver, nothing to serve.
		return fmt.Errorf("%w: no CPU with cpufreq below %s", collectors.ErrNoData, c.path)
	}
	return nil
}
