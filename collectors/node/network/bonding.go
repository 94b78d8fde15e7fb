package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "bonding",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newBondingCollector(env), nil }
		},
	})
}

// bondingCollector serves, per Linux bonding master, how many slaves it
// has and how many of them have MII link up; node-mixin's
// NodeBondingDegraded alerts when the two differ. procfs has no reader for
// /sys/class/net/<bond>/bonding, so the few files are read here.
type bondingCollector struct {
	netDir string // <sysfs>/class/net
	logger *slog.Logger

	slaves, active *prometheus.Desc
}

func newBondingCollector(env collectors.Env) *bondingCollector {
	return &bondingCollector{
		netDir: filepath.Join(env.Paths.SysFS, "class", "net"),
		logger: env.Logger,
		slaves: prometheus.NewDesc("node_bonding_slaves",
			"Number of configured slaves per bonding interface.", []string{"master"}, nil),
		active: prometheus.NewDesc("node_bonding_active",
			"Number of active slaves per bonding interface.", []string{"master"}, nil),
	}
}

func (c *bondingCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	mastersFile := filepath.Join(c.netDir, "bonding_masters")
	b, err := os.ReadFile(mastersFile)
	if errors.Is(err, fs.ErrNotExist) {
		// The bonding module is not loaded.
		c.logger.Debug("bonding: no bonding_masters", "file", mastersFile)
		return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return fmt.Errorf("reading bonding masters: %w", err)
	}
	var errs []error
	for _, master := range strings.Fields(string(b)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		slaves, active, err := c.readMaster(master)
		if err != nil {
			// node_exporter drops every bond then; the others are served.
			errs = append(errs, err)
			continue
		}
		m := hostfile.ValidLabel(master)
		ch <- prometheus.MustNewConstMetric(c.slaves, prometheus.GaugeValue, float64(slaves), m)
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(active), m)
	}
	return errors.Join(errs...)
}

// readMaster counts a bond's slaves and those whose MII status is up.
func (c *bondingCollector) readMaster(master string) (slaves, active int, err error) {
	b, err := os.ReadFile(filepath.Join(c.netDir, master, "bonding", "slaves"))
	if err != nil {
		return 0, 0, fmt.Errorf("reading slaves of bond %s: %w", master, err)
	}
	for _, slave := range strings.Fields(string(b)) {
		status, err := os.ReadFile(filepath.Join(c.netDir, master, "lower_"+slave, "bonding_slave", "mii_status"))
		if errors.Is(err, fs.ErrNotExist) {
			// Kernels before 4.x link slaves as slave_<name>.
			status, err = os.ReadFile(filepath.Join(c.netDir, master, "slave_"+slave, "bonding_slave", "mii_status"))
		}
		if err != nil {
			return 0, 0, fmt.Errorf("reading MII status of slave %s of bond %s: %w", slave, master, err)
		}
		slaves++
		if strings.TrimSpace(string(status)) == "up" {
			active++
		}
	}
	return slaves, active, nil
}
