package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "rapl",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &raplConfig{}
			app.Flag("collector.rapl.enable-zone-label", "Serve one family node_rapl_joules_total with a rapl_zone label instead of a family per zone (node_rapl_<zone>_joules_total).").
				BoolVar(&cfg.zoneLabel)
			return func(env collectors.Env) (collectors.Collector, error) { return newRaplCollector(env, *cfg), nil }
		},
	})
}

type raplConfig struct {
	zoneLabel bool
}

// raplCollector serves the energy counters of Intel/AMD RAPL power zones
// from /sys/class/powercap. By default each zone name makes its own family,
// as node_exporter names them: node_rapl_package_joules_total,
// node_rapl_core_joules_total, node_rapl_uncore_joules_total,
// node_rapl_dram_joules_total, node_rapl_psys_joules_total; with
// --collector.rapl.enable-zone-label all share node_rapl_joules_total.
//
// energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694): an
// agent without the privilege gets no data, not an error.
type raplCollector struct {
	sys       sysfs.FS
	logger    *slog.Logger
	zoneLabel bool
	// energy reads a zone's counter; tests replace it, since root (as the
	// tests run) reads energy_uj whatever its mode.
	energy func(sysfs.RaplZone) (uint64, error)

	joules     *prometheus.Desc // with the rapl_zone label
	invalidRun *regexp.Regexp   // what a zone name may not contain in a metric name
}

func newRaplCollector(env collectors.Env, cfg raplConfig) *raplCollector {
	return &raplCollector{
		sys:       env.Sys,
		logger:    env.Logger,
		zoneLabel: cfg.zoneLabel,
		energy:    sysfs.RaplZone.GetEnergyMicrojoules,
		joules: prometheus.NewDesc("node_rapl_joules_total",
			"Current RAPL value in joules", []string{"index", "path", "rapl_zone"}, nil),
		invalidRun: regexp.MustCompile(`_*[^0-9A-Za-z_]+_*`),
	}
}

func (c *raplCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	zones, err := sysfs.GetRaplZones(c.sys)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		c.logger.Debug("rapl: no readable powercap zones", "err", err)
		return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return fmt.Errorf("reading RAPL zones: %w", err)
	}
	var errs []error
	for _, z := range zones {
		if err := ctx.Err(); err != nil {
			return err
		}
		uj, err := c.energy(z)
		if errors.Is(err, fs.ErrPermission) {
			c.logger.Debug("rapl: energy_uj is readable by root only", "zone", z.Path, "err", err)
			return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading RAPL zone %s: %w", z.Path, err))
			continue
		}
		joules := float64(uj) / 1000000.0
		index, path := strconv.Itoa(z.Index), hostfile.ValidLabel(z.Path)
		if c.zoneLabel {
			ch <- prometheus.MustNewConstMetric(c.joules, prometheus.CounterValue, joules, index, path, hostfile.ValidLabel(z.Name))
			continue
		}
		desc := prometheus.NewDesc("node_rapl_"+c.invalidRun.ReplaceAllString(z.Name, "_")+"_joules_total",
			"Current RAPL "+hostfile.ValidLabel(z.Name)+" value in joules", []string{"index", "path"}, nil)
		m, err := prometheus.NewConstMetric(desc, prometheus.CounterValue, joules, index, path)
		if err != nil {
			// A zone name no metric name can be made of.
			errs = append(errs, fmt.Errorf("RAPL zone %s: %w", z.Path, err))
			continue
		}
		ch <- m
	}
	return errors.Join(errs...)
}
