package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	// On sysfs the clocksource attributes are kept open between scrapes
	// and read with pread (hostfile.AttrDir), by directory name; elsewhere
	// (a fixture tree) procfs reads them by path.
	onSysfs bool
	mu      sync.Mutex
	kept    *hostfile.AttrDirs

	seconds, zoneOffset, available, current *collectors.CompactDesc
}

func newTimeCollector(env collectors.Env) *timeCollector {
	return &timeCollector{
		now:        env.Now,
		sys:        env.Sys,
		sysPath:    env.Paths.SysFS,
		onSysfs:    hostfile.IsSysfs(filepath.Join(env.Paths.SysFS, "devices", "system", "clocksource")),
		kept:       hostfile.NewAttrDirs(clocksourceFiles),
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

	read := c.sys.ClockSources
	if c.onSysfs {
		read = c.keptClockSources
	}
	sources, err := read()
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

// clocksourceFiles are the attributes of a clocksource directory served.
var clocksourceFiles = []string{"available_clocksource", "current_clocksource"}

// keptClockSources is procfs' ClockSources read through descriptors kept
// from earlier scrapes: the directories clocksource[0-9]* in name order,
// each one's attributes opened anew when the directory is a new one.
func (c *timeCollector) keptClockSources() ([]sysfs.ClockSource, error) {
	dir := filepath.Join(c.sysPath, "devices", "system", "clocksource")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // as procfs' glob finds nothing
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(entries))
	defer c.kept.Keep(seen)
	var sources []sysfs.ClockSource
	for _, e := range entries {
		name := e.Name()
		n, ok := strings.CutPrefix(name, "clocksource")
		if !ok || n == "" || n[0] < '0' || n[0] > '9' {
			continue
		}
		seen[name] = true
		path := filepath.Join(dir, name)
		d, err := c.kept.Open(name, path)
		if err != nil {
			return nil, err
		}
		var values [2]string
		for i, f := range clocksourceFiles {
			v, ok, err := d.Read(f)
			if err == nil && !ok {
				err = fmt.Errorf("%s/%s cannot be read", path, f)
			}
			if err != nil {
				c.kept.Forget(name)
				return nil, err
			}
			values[i] = v
		}
		sources = append(sources, sysfs.ClockSource{
			Name: n, Available: strings.Fields(values[0]), Current: values[1],
		})
	}
	return sources, nil
}
