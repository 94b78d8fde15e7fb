package node

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "thermal_zone",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newThermalZoneCollector(env), nil }
		},
	})
}

// thermalZoneCollector serves /sys/class/thermal: zone temperatures and
// cooling device states.
type thermalZoneCollector struct {
	sys     sysfs.FS
	sysPath string
	logger  *slog.Logger

	zoneTemp, curState, maxState *prometheus.Desc
}

func newThermalZoneCollector(env collectors.Env) *thermalZoneCollector {
	return &thermalZoneCollector{
		sys:     env.Sys,
		sysPath: env.Paths.SysFS,
		logger:  env.Logger,
		zoneTemp: prometheus.NewDesc("node_thermal_zone_temp",
			"Zone temperature in Celsius", []string{"zone", "type"}, nil),
		curState: prometheus.NewDesc("node_cooling_device_cur_state",
			"Current throttle state of the cooling device", []string{"name", "type"}, nil),
		maxState: prometheus.NewDesc("node_cooling_device_max_state",
			"Maximum throttle state of the cooling device", []string{"name", "type"}, nil),
	}
}

func (c *thermalZoneCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	zones, err := c.sys.ClassThermalZoneStats()
	if err != nil {
		return fmt.Errorf("reading %s/class/thermal: %w", c.sysPath, err)
	}
	for _, z := range zones {
		if z.ReadErrors != nil {
			// Like node_exporter, serve the zone anyway: a missing policy
			// does not make the temperature wrong, and a temperature the
			// driver refuses (EINVAL) reads 0 there too.
			c.logger.Debug("thermal_zone: zone partly unreadable", "zone", z.Name, "err", z.ReadErrors)
		}
		ch <- prometheus.MustNewConstMetric(c.zoneTemp, prometheus.GaugeValue, float64(z.Temp)/1000.0,
			hostfile.ValidLabel(z.Name), hostfile.ValidLabel(z.Type))
	}

	devices, err := c.sys.ClassCoolingDeviceStats()
	if err != nil {
		return fmt.Errorf("reading cooling devices in %s/class/thermal: %w", c.sysPath, err)
	}
	for _, d := range devices {
		ch <- prometheus.MustNewConstMetric(c.curState, prometheus.GaugeValue, float64(d.CurState), hostfile.ValidLabel(d.Name), hostfile.ValidLabel(d.Type))
		ch <- prometheus.MustNewConstMetric(c.maxState, prometheus.GaugeValue, float64(d.MaxState), hostfile.ValidLabel(d.Name), hostfile.ValidLabel(d.Type))
	}
	if len(zones) == 0 && len(devices) == 0 {
		// Most VMs and many servers have neither: nothing to serve, and
		// the Scraper then looks again only after --scrape.no-data-recheck.
		return fmt.Errorf("%w: no thermal zone or cooling device in %s/class/thermal", collectors.ErrNoData, c.sysPath)
	}
	return nil
}
