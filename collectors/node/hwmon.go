package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/devicefilter"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "hwmon",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &hwmonConfig{}
			app.Flag("collector.hwmon.chip-include", "Regexp of hwmon chip labels to serve; other chips are skipped.").StringVar(&cfg.chipInclude)
			app.Flag("collector.hwmon.chip-exclude", "Regexp of hwmon chip labels to skip.").StringVar(&cfg.chipExclude)
			app.Flag("collector.hwmon.sensor-include", "Regexp of hwmon sensors, as <chip>;<sensor>, to serve; other sensors are skipped.").StringVar(&cfg.sensorInclude)
			app.Flag("collector.hwmon.sensor-exclude", "Regexp of hwmon sensors, as <chip>;<sensor>, to skip.").StringVar(&cfg.sensorExclude)
			return func(env collectors.Env) (collectors.Collector, error) { return newHwmonCollector(env, *cfg) }
		},
	})
}

type hwmonConfig struct {
	chipInclude, chipExclude, sensorInclude, sensorExclude string
}

// hwmonCollector serves /sys/class/hwmon as node_exporter does (the
// lm-sensors view of temperatures, fans, voltages, currents, power).
//
// Family names are built from the sysfs attribute names, as
// node_exporter builds them: node_hwmon_<type>[_<attribute>]<unit>, for
// example node_hwmon_temp_celsius, node_hwmon_temp_crit_celsius,
// node_hwmon_fan_rpm, node_hwmon_in_volts, node_hwmon_curr_amps,
// node_hwmon_power_average_watt, node_hwmon_energy_joule_total,
// node_hwmon_humidity, node_hwmon_temp_crit_alarm_celsius (sic),
// node_hwmon_fan_alarm, node_hwmon_in_beep_enabled, node_hwmon_pwm_enable
// (attributes without a unit keep their name). Fixed names are written in
// full below.
type hwmonCollector struct {
	sysPath string
	logger  *slog.Logger
	chips   devicefilter.Filter
	sensors devicefilter.Filter
	// readAttr reads one sysfs attribute; tests replace it to inject
	// errors a fixture cannot produce (EIO from a broken sensor).
	readAttr func(path string) (string, error)

	chipNames, sensorLabel, beepEnabled, regulator, updateInterval *collectors.CompactDesc

	filenameRE *regexp.Regexp // <type><index>_<attribute>
	invalidRE  *regexp.Regexp // what cleanHwmonName replaces

	mu sync.Mutex
	// naming keeps each chip directory's name file and derived name, by
	// the path under /sys/class/hwmon: both are fixed when the driver
	// registers the hwmon device, and a device registered again gets a
	// new directory, with a new inode. Re-deriving them every scrape was
	// a fifth of this collector's cost (the name file's read and the
	// symbolic links of the device path resolved one by one).
	naming map[string]hwmonNaming
	// labels keeps the chip and sensor label sets of the last scrape, by
	// "<chip>;<sensor label>".
	labels map[string]*exposition.LabelSet
}

// hwmonNaming is what naming keeps of one chip directory.
type hwmonNaming struct {
	ino            uint64
	nameFile, base string
}

// hwmonSensorType says whether node_exporter serves attributes of this
// type; others (name, uevent, modalias...) are skipped.
func hwmonSensorType(typ string) bool {
	switch typ {
	case "vrm", "beep_enable", "update_interval", "in", "cpu", "fan",
		"pwm", "temp", "curr", "power", "energy", "humidity",
		"intrusion", "freq":
		return true
	}
	return false
}

func newHwmonCollector(env collectors.Env, cfg hwmonConfig) (*hwmonCollector, error) {
	chips, err := devicefilter.New("collector.hwmon.chip-exclude", cfg.chipExclude, "collector.hwmon.chip-include", cfg.chipInclude)
	if err != nil {
		return nil, err
	}
	sensors, err := devicefilter.New("collector.hwmon.sensor-exclude", cfg.sensorExclude, "collector.hwmon.sensor-include", cfg.sensorInclude)
	if err != nil {
		return nil, err
	}
	chipSensor := []string{"chip", "sensor"}
	gauge := dto.MetricType_GAUGE
	return &hwmonCollector{
		sysPath:  env.Paths.SysFS,
		logger:   env.Logger,
		chips:    chips,
		sensors:  sensors,
		readAttr: hostfile.ReadSysfsAttr,
		chipNames: collectors.NewCompactDesc("node_hwmon_chip_names",
			"Annotation metric for human-readable chip names", gauge, "chip", "chip_name"),
		sensorLabel: collectors.NewCompactDesc("node_hwmon_sensor_label",
			"Label for given chip and sensor", gauge, "chip", "sensor", "label"),
		beepEnabled:    collectors.NewCompactDesc("node_hwmon_beep_enabled", "Hardware beep enabled", gauge, chipSensor...),
		regulator:      collectors.NewCompactDesc("node_hwmon_voltage_regulator_version", "Hardware voltage regulator", gauge, chipSensor...),
		updateInterval: collectors.NewCompactDesc("node_hwmon_update_interval_seconds", "Hardware monitor update interval", gauge, chipSensor...),
		filenameRE:     regexp.MustCompile(`^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$`),
		invalidRE:      regexp.MustCompile("[^a-z0-9:_]"),
		naming:         map[string]hwmonNaming{},
	}, nil
}

// hwmonChip is one /sys/class/hwmon/hwmonN directory.
type hwmonChip struct {
	dir      string
	base     string // the name derived from the device path, name file or hwmonN
	nameFile string // the trimmed content of the name file
}

func (c *hwmonCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the chips' sensors as compact families, whose
// names come from the attribute names (a family per type and property).
func (c *hwmonCollector) UpdateCompact(ctx context.Context) ([]*exposition.CompactFamily, error) {
	root := filepath.Join(c.sysPath, "class", "hwmon")
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		c.logger.Debug("hwmon: no hwmon class on this system", "err", err)
		return nil, fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	if err != nil {
		return nil, fmt.Errorf("listing hwmon chips: %w", err)
	}

	// Several hwmon directories can hang off one device (asus-nb-wmi has
	// one for fan control and one for its WMI sensors): their derived names
	// collide and are told apart by their name files, else by hwmonN.
	c.mu.Lock()
	defer c.mu.Unlock()
	var chips []hwmonChip
	baseCount, nameCount := map[string]int{}, map[string]int{}
	naming := make(map[string]hwmonNaming, len(entries))
	defer func() { c.naming = naming }()
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() {
			continue
		}
		var ino uint64
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			ino = st.Ino
		}
		n, kept := c.naming[dir]
		if !kept || n.ino != ino || ino == 0 {
			// The name file is read once here; naming and the chip-name
			// series use what was read.
			n = hwmonNaming{ino: ino}
			if b, err := os.ReadFile(filepath.Join(dir, "name")); err == nil {
				n.nameFile = strings.TrimSpace(string(b))
			}
			if n.base, err = c.chipName(dir, n.nameFile); err != nil {
				c.logger.Debug("hwmon: cannot name chip", "dir", dir, "err", err)
				continue
			}
		}
		naming[dir] = n
		chips = append(chips, hwmonChip{dir: dir, base: n.base, nameFile: n.nameFile})
		baseCount[n.base]++
		nameCount[n.base+"\x00"+n.nameFile]++
	}

	var b collectors.CompactBuilder
	labels := make(map[string]*exposition.LabelSet, len(c.labels))
	defer func() { c.labels = labels }()
	var errs []error
	for _, chip := range chips {
		if err := ctx.Err(); err != nil {
			return b.Families(), err
		}
		name := chip.base
		if baseCount[chip.base] > 1 {
			suffix := c.clean(chip.nameFile)
			if suffix == "" || nameCount[chip.base+"\x00"+chip.nameFile] > 1 {
				suffix = c.clean(filepath.Base(chip.dir))
			}
			name += "_" + suffix
		}
		// Filters apply to the label the series carry.
		if c.chips.Ignored(name) {
			c.logger.Debug("hwmon: chip filtered out", "chip", name)
			continue
		}
		if err := c.updateChip(&b, labels, chip, name); err != nil {
			errs = append(errs, err)
		}
	}
	return b.Families(), errors.Join(errs...)
}

// chipSensor is the label set {chip, sensor}, kept from the last scrape.
func (c *hwmonCollector) chipSensor(labels map[string]*exposition.LabelSet, chip, sensor string) *exposition.LabelSet {
	key := chip + ";" + sensor
	ls, ok := c.labels[key]
	if !ok {
		ls = collectors.LabelSet("chip", chip, "sensor", sensor)
	}
	labels[key] = ls
	return ls
}

// clean lowercases s and turns what is not [a-z0-9:_] into '_', trimming
// '_' at both ends, as node_exporter's hwmon collector names things.
func (c *hwmonCollector) clean(s string) string {
	return strings.Trim(c.invalidRE.ReplaceAllLiteralString(strings.ToLower(s), "_"), "_")
}

// chipName derives a stable chip label: from the device the hwmon hangs off
// (<bus type>_<device>, e.g. platform_coretemp_0), else from its name file,
// else from hwmonN, whose number depends on module load order.
func (c *hwmonCollector) chipName(dir, nameFile string) (string, error) {
	if dev, err := filepath.EvalSymlinks(filepath.Join(dir, "device")); err == nil {
		parent, devName := filepath.Split(dev)
		devType := filepath.Base(strings.TrimRight(parent, "/"))
		cleanName, cleanType := c.clean(devName), c.clean(devType)
		if cleanType != "" && cleanName != "" {
			return cleanType + "_" + cleanName, nil
		}
		if cleanName != "" {
			return cleanName, nil
		}
	}
	if n := c.clean(nameFile); n != "" {
		return n, nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	if n := c.clean(filepath.Base(real)); n != "" {
		return n, nil
	}
	return "", fmt.Errorf("cannot derive a chip name for %s", dir)
}

// splitSensorFile splits an attribute file name into type, index and
// property: temp1_crit_alarm → temp, 1, crit_alarm; vrm → vrm, 0, "".
func (c *hwmonCollector) splitSensorFile(name string) (typ string, index int, property string, ok bool) {
	m := c.filenameRE.FindStringSubmatch(name)
	if m == nil {
		return "", 0, "", false
	}
	if m[2] != "" {
		n, err := strconv.Atoi(m[2])
		if err != nil {
			return "", 0, "", false
		}
		index = n
	}
	return m[1], index, m[4], true
}

// readSensors adds dir's sensor attributes to data: sensor (type+index) →
// property → value. An attribute that cannot be read (a driver answering
// EIO, EAGAIN) is skipped, as node_exporter skips it.
func (c *hwmonCollector) readSensors(dir string, data map[string]map[string]string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		typ, index, prop, ok := c.splitSensorFile(e.Name())
		if !ok || !hwmonSensorType(typ) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		v, err := c.readAttr(path)
		if err != nil {
			c.logger.Debug("hwmon: skipping unreadable attribute", "file", path, "err", err)
			continue
		}
		sensor := typ + strconv.Itoa(index)
		if data[sensor] == nil {
			data[sensor] = map[string]string{}
		}
		data[sensor][prop] = v
	}
	return nil
}

func (c *hwmonCollector) updateChip(b *collectors.CompactBuilder, labels map[string]*exposition.LabelSet, hc hwmonChip, chip string) error {
	dir := hc.dir
	data := map[string]map[string]string{}
	if err := c.readSensors(dir, data); err != nil {
		return fmt.Errorf("reading hwmon chip %s: %w", dir, err)
	}
	// Older drivers put their attributes on the device itself.
	if _, err := os.Stat(filepath.Join(dir, "device")); err == nil {
		if err := c.readSensors(filepath.Join(dir, "device"), data); err != nil {
			return fmt.Errorf("reading hwmon chip %s/device: %w", dir, err)
		}
	}
	if n := c.clean(hc.nameFile); n != "" {
		b.AddValues(c.chipNames, 1, chip, n)
	}

	for _, sensor := range slices.Sorted(maps.Keys(data)) {
		// The sensor filter sees "<chip>;<sensor>", so that one sensor of
		// one chip can be chosen: platform_coretemp_0;temp3.
		if c.sensors.Ignored(chip + ";" + sensor) {
			c.logger.Debug("hwmon: sensor filtered out", "chip", chip, "sensor", sensor)
			continue
		}
		c.addSensor(b, labels, chip, sensor, data[sensor])
	}
	return nil
}

func (c *hwmonCollector) addSensor(b *collectors.CompactBuilder, labels map[string]*exposition.LabelSet, chip, sensor string, props map[string]string) {
	typ, _, _, _ := c.splitSensorFile(sensor)
	label, hasLabel := props["label"]
	if hasLabel {
		b.AddValues(c.sensorLabel, 1, chip, sensor, hostfile.ValidLabel(label))
	}
	switch typ {
	case "beep_enable":
		v := 0.0
		if props[""] == "1" {
			v = 1
		}
		b.AddLabels(c.beepEnabled, v, c.chipSensor(labels, chip, sensor))
		return
	case "vrm":
		if v, err := strconv.ParseFloat(props[""], 64); err == nil {
			b.AddLabels(c.regulator, v, c.chipSensor(labels, chip, sensor))
		}
		return
	case "update_interval":
		if v, err := strconv.ParseFloat(props[""], 64); err == nil {
			b.AddLabels(c.updateInterval, v*0.001, c.chipSensor(labels, chip, sensor))
		}
		return
	}

	_, hasBare := props[""]
	for _, prop := range slices.Sorted(maps.Keys(props)) {
		if prop == "label" {
			continue
		}
		v, err := strconv.ParseFloat(props[prop], 64)
		if err != nil {
			continue
		}
		m := c.hwmonMetric(typ, prop, hasBare, v)
		sensorLabel := sensor
		if m.byLabel {
			if !hasLabel {
				continue
			}
			sensorLabel = c.clean(label)
		}
		b.Add(m.name, m.help, m.typ, c.chipSensor(labels, chip, sensorLabel), m.value)
	}
}

type hwmonSample struct {
	name, help string
	typ        dto.MetricType
	value      float64
	// byLabel: the series' sensor label is the sensor's cleaned label
	// (sclk, mclk for GPU clocks), and without a label it is not served.
	byLabel bool
}

// hwmonMetric names, describes and scales one attribute as node_exporter
// does. hasBare says whether the sensor has an attribute without a
// property (temp1 as well as temp1_input).
func (c *hwmonCollector) hwmonMetric(typ, prop string, hasBare bool, v float64) hwmonSample {
	name := "node_hwmon_" + typ
	switch {
	case prop == "input" && hasBare:
		name += "_input"
	case prop != "input" && prop != "":
		name += "_" + c.clean(prop)
	}
	gauge := func(name, help string, v float64) hwmonSample {
		return hwmonSample{name: name, help: help, typ: dto.MetricType_GAUGE, value: v}
	}
	switch {
	// Status attributes carry no unit.
	case prop == "fault" || prop == "alarm":
		return gauge(name, "Hardware sensor "+prop+" status ("+typ+")", v)
	case prop == "beep":
		return gauge(name+"_enabled", "Hardware monitor sensor has beeping enabled", v)
	// The kernel's units: millivolts, millidegrees, milliamperes,
	// microwatts, microjoules, milli-percent, hertz, milliseconds.
	case typ == "in" || typ == "cpu":
		return gauge(name+"_volts", "Hardware monitor for voltage ("+prop+")", v*0.001)
	case typ == "temp" && prop != "type":
		help := prop
		if help == "" {
			help = "input"
		}
		return gauge(name+"_celsius", "Hardware monitor for temperature ("+help+")", v*0.001)
	case typ == "curr":
		return gauge(name+"_amps", "Hardware monitor for current ("+prop+")", v*0.001)
	case typ == "energy":
		return hwmonSample{name: name + "_joule_total", help: "Hardware monitor for joules used so far (" + prop + ")",
			typ: dto.MetricType_COUNTER, value: v / 1000000.0}
	case typ == "power" && prop == "accuracy":
		return gauge(name, "Hardware monitor power meter accuracy, as a ratio", v/1000000.0)
	case typ == "power" && (prop == "average_interval" || prop == "average_interval_min" || prop == "average_interval_max"):
		return gauge(name+"_seconds", "Hardware monitor power usage update interval ("+prop+")", v*0.001)
	case typ == "power":
		return gauge(name+"_watt", "Hardware monitor for power usage in watts ("+prop+")", v/1000000.0)
	case typ == "humidity":
		return gauge(name, "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the humidity as a percentage) ("+prop+")", v/1000000.0)
	case typ == "fan" && (prop == "input" || prop == "min" || prop == "max" || prop == "target"):
		return gauge(name+"_rpm", "Hardware monitor for fan revolutions per minute ("+prop+")", v)
	case typ == "freq" && prop == "input":
		s := gauge(name+"_freq_mhz", "Hardware monitor for GPU frequency in MHz", v/1000000.0)
		s.byLabel = true
		return s
	default:
		return gauge(name, "Hardware monitor "+typ+" element "+prop, v)
	}
}
