package node

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
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

	seconds, zoneOffset, available, current *collectors.CompactDesc
}

func newTimeCollector(env collectors.Env) *timeCollector {
	return &timeCollector{
		now:        env.Now,
		sys:        env.Sys,
		sysPath:    env.Paths.SysFS,
		seconds:    collectors.NewCompactDesc("node_time_seconds", "System time in seconds since epoch (1970).", dto.MetricType_GAUGE),
		zoneOffset: collectors.NewCompactDesc("node_time_zone_offset_seconds", "System time zone offset in seconds.", dto.MetricType_GAUGE, "time_zone"),
		available:  collectors.NewCompactDesc("node_time_clocksource_available_info", "Available clocksources read from '/sys/devices/system/clocksource'.", dto.MetricType_GAUGE, "device", "clocksource"),
		current:    collectors.NewCompactDesc("node_time_clocksource_current_info", "Current clocksource read from '/sys/devices/system/clocksource'.", dto.MetricType_GAUGE, "device", "clocksource"),
	}
}

func (c *timeCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the same series in compact form.
func (c *timeCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	now := c.now()
	zone, offset := now.Zone()
	b.AddValues(c.seconds, float64(now.UnixNano())/1e9)
	b.AddValues(c.zoneOffset, float64(offset), hostfile.ValidLabel(zone))

	sources, err := c.sys.ClockSources()
	if err != nil {
		return b.Families(), fmt.Errorf("reading %s/devices/system/clocksource: %w", c.sysPath, err)
	}
	for i, s := range sources {
		// node_exporter numbers the clocksource directories in the order
		// it finds them, not by their names.
		device := strconv.Itoa(i)
		for _, name := range s.Available {
			b.AddValues(c.available, 1, device, hostfile.ValidLabel(name))
		}
		b.AddValues(c.current, 1, device, hostfile.ValidLabel(s.Current))
	}
	return b.Families(), nil
}
