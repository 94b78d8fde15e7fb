package node

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "time",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newTimeCollector(env), nil }
		},
	})
}

// timeCollector serves the system clock, its time zone, and the kernel's
// clock sources from /sys/devices/system/clocksource.
type timeCollector struct {
	// now is the clock (Env.Now): the system time in its local zone.
	now     func() time.Time
	sys     sysfs.FS
	sysPath string

	seconds, zoneOffset, available, current *prometheus.Desc
}

func newTimeCollector(env collectors.Env) *timeCollector {
	return &timeCollector{
		now:     env.Now,
		sys:     env.Sys,
		sysPath: env.Paths.SysFS,
		seconds: prometheus.NewDesc("node_time_seconds",
			"System time in seconds since epoch (1970).", nil, nil),
		zoneOffset: prometheus.NewDesc("node_time_zone_offset_seconds",
			"System time zone offset in seconds.", []string{"time_zone"}, nil),
		available: prometheus.NewDesc("node_time_clocksource_available_info",
			"Available clocksources read from '/sys/devices/system/clocksource'.", []string{"device", "clocksource"}, nil),
		current: prometheus.NewDesc("node_time_clocksource_current_info",
			"Current clocksource read from '/sys/devices/system/clocksource'.", []string{"device", "clocksource"}, nil),
	}
}

func (c *timeCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	now := c.now()
	zone, offset := now.Zone()
	ch <- prometheus.MustNewConstMetric(c.seconds, prometheus.GaugeValue, float64(now.UnixNano())/1e9)
	ch <- prometheus.MustNewConstMetric(c.zoneOffset, prometheus.GaugeValue, float64(offset), hostfile.ValidLabel(zone))

	sources, err := c.sys.ClockSources()
	if err != nil {
		return fmt.Errorf("reading %s/devices/system/clocksource: %w", c.sysPath, err)
	}
	for i, s := range sources {
		// node_exporter numbers the clocksource directories in the order
		// it finds them, not by their names.
		device := strconv.Itoa(i)
		for _, name := range s.Available {
			ch <- prometheus.MustNewConstMetric(c.available, prometheus.GaugeValue, 1, device, hostfile.ValidLabel(name))
		}
		ch <- prometheus.MustNewConstMetric(c.current, prometheus.GaugeValue, 1, device, hostfile.ValidLabel(s.Current))
	}
	return nil
}
