package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

// cpuConfig holds the cpu collector's flags, spelled as node_exporter's.
type cpuConfig struct {
	guest        bool
	info         bool
	flagsInclude string
	bugsInclude  string
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "cpu",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &cpuConfig{}
			app.Flag("collector.cpu.guest", "Enables metric node_cpu_guest_seconds_total.").Default("true").BoolVar(&cfg.guest)
			app.Flag("collector.cpu.info", "Enables metric node_cpu_info (and node_cpu_flag_info, node_cpu_bug_info with the include flags).").BoolVar(&cfg.info)
			app.Flag("collector.cpu.info.flags-include", "Regexp of /proc/cpuinfo `flags` to serve as node_cpu_flag_info; implies --collector.cpu.info.").StringVar(&cfg.flagsInclude)
			app.Flag("collector.cpu.info.bugs-include", "Regexp of /proc/cpuinfo `bugs` to serve as node_cpu_bug_info; implies --collector.cpu.info.").StringVar(&cfg.bugsInclude)
			return func(env collectors.Env) (collectors.Collector, error) { return newCPUCollector(env, *cfg) }
		},
	})
}

// cpuJumpBackSeconds: an idle counter that goes back by more than this is a
// CPU that was unplugged and plugged again, so its counters start over;
// smaller backward steps are kernel noise and are ignored, as node_exporter
// does, so that node_cpu_seconds_total never decreases.
const cpuJumpBackSeconds = 3.0

// cpuCollector serves /proc/stat's per-CPU times, /proc/cpuinfo (opt-in) and
// the CPU topology files of sysfs, as node_exporter's cpu collector does.
type cpuCollector struct {
	cfg      cpuConfig
	proc     procfs.FS
	sys      sysfs.FS
	procPath string
	sysPath  string
	logger   *slog.Logger
	isolated []uint16
	// frequency: serve node_cpu_frequency_hertz from /proc/cpuinfo (with
	// --collector.cpu.info, when the cpufreq collector is off).
	frequency bool
	flagsRE   *regexp.Regexp
	bugsRE    *regexp.Regexp

	seconds, guest, info, flagInfo, bugInfo *collectors.CompactDesc
	frequencyDesc                           *collectors.CompactDesc
	coreThrottles, packageThrottles         *collectors.CompactDesc
	isolatedDesc, online                    *collectors.CompactDesc

	// mu guards last, the counters last served per CPU, kept so that they
	// never go backwards between scrapes, and cores, each CPU's package and
	// core id: fixed while the CPU exists, so sysfs topology is read once
	// per CPU rather than every scrape (4 files per CPU on a large node).
	mu    sync.Mutex
	last  map[int64]procfs.CPUStat
	cores map[sysfs.CPU]cpuCore
	// labels are each CPU's label sets of node_cpu_seconds_total's modes
	// and node_cpu_guest_seconds_total's, built once while it exists.
	labels map[int64]*cpuLabels
}

// cpuCore identifies a physical core.
type cpuCore struct{ pkg, core string }

func newCPUCollector(env collectors.Env, cfg cpuConfig) (*cpuCollector, error) {
	counter, gauge := dto.MetricType_COUNTER, dto.MetricType_GAUGE
	c := &cpuCollector{
		cfg:      cfg,
		proc:     env.Proc,
		sys:      env.Sys,
		procPath: env.Paths.ProcFS,
		sysPath:  env.Paths.SysFS,
		logger:   env.Logger,
		last:     map[int64]procfs.CPUStat{},
		cores:    map[sysfs.CPU]cpuCore{},
		seconds: collectors.NewCompactDesc("node_cpu_seconds_total",
			"Seconds the CPUs spent in each mode.", counter, "cpu", "mode"),
		guest: collectors.NewCompactDesc("node_cpu_guest_seconds_total",
			"Seconds the CPUs spent in guests (VMs) for each mode.", counter, "cpu", "mode"),
		info: collectors.NewCompactDesc("node_cpu_info",
			"CPU information from /proc/cpuinfo.", gauge,
			"package", "core", "cpu", "vendor", "family", "model", "model_name", "microcode", "stepping", "cachesize"),
		frequencyDesc: collectors.NewCompactDesc("node_cpu_frequency_hertz",
			"CPU frequency in hertz from /proc/cpuinfo.", gauge, "package", "core", "cpu"),
		flagInfo: collectors.NewCompactDesc("node_cpu_flag_info",
			"The `flags` field of CPU information from /proc/cpuinfo taken from the first core.", gauge, "flag"),
		bugInfo: collectors.NewCompactDesc("node_cpu_bug_info",
			"The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.", gauge, "bug"),
		coreThrottles: collectors.NewCompactDesc("node_cpu_core_throttles_total",
			"Number of times this CPU core has been throttled.", counter, "package", "core"),
		packageThrottles: collectors.NewCompactDesc("node_cpu_package_throttles_total",
			"Number of times this CPU package has been throttled.", counter, "package"),
		isolatedDesc: collectors.NewCompactDesc("node_cpu_isolated",
			"Whether each core is isolated, information from /sys/devices/system/cpu/isolated.", gauge, "cpu"),
		online: collectors.NewCompactDesc("node_cpu_online",
			"CPUs that are online and being scheduled.", gauge, "cpu"),
	}
	var err error
	if cfg.flagsInclude != "" {
		if c.flagsRE, err = regexp.Compile(cfg.flagsInclude); err != nil {
			return nil, fmt.Errorf("--collector.cpu.info.flags-include: %w", err)
		}
	}
	if cfg.bugsInclude != "" {
		if c.bugsRE, err = regexp.Compile(cfg.bugsInclude); err != nil {
			return nil, fmt.Errorf("--collector.cpu.info.bugs-include: %w", err)
		}
	}
	if c.flagsRE != nil || c.bugsRE != nil {
		c.cfg.info = true
	}
	// node_cpu_frequency_hertz is also cpufreq's family (from
	// cpuinfo_cur_freq, with a cpu label only): one response must not
	// carry it twice with two helps and label sets. node_exporter guards
	// it by whether cpufreq is enabled; 1.12.1 has that guard inverted and
	// serves both when both can (node_exporter #3318, #3689, fixed by
	// #3795): here cpuinfo's frequency is served only when cpufreq is off.
	c.frequency = c.cfg.info && (env.Enabled == nil || !env.Enabled("cpufreq"))
	// isolcpus is a boot parameter: read once, like node_exporter.
	c.isolated, err = env.Sys.IsolatedCPUs()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		env.Logger.Debug("no isolated CPU list; node_cpu_isolated not served", "path", c.sysPath+"/devices/system/cpu/isolated")
	case err != nil:
		env.Logger.Warn("cannot read the isolated CPU list; node_cpu_isolated not served",
			"path", c.sysPath+"/devices/system/cpu/isolated", "err", err)
	}
	return c, nil
}

func (c *cpuCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the CPU families in compact form.
func (c *cpuCollector) UpdateCompact(ctx context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	if c.cfg.info {
		if err := c.updateInfo(&b); err != nil {
			return b.Families(), err
		}
	}
	if err := c.updateStat(&b); err != nil {
		return b.Families(), err
	}
	for _, cpu := range c.isolated {
		b.AddValues(c.isolatedDesc, 1, strconv.Itoa(int(cpu)))
	}
	if err := ctx.Err(); err != nil {
		return b.Families(), err
	}
	cpus, err := c.sys.CPUs()
	if err != nil {
		return b.Families(), fmt.Errorf("listing CPUs in %s/devices/system/cpu: %w", c.sysPath, err)
	}
	c.updateThrottles(cpus, &b)
	c.updateOnline(cpus, &b)
	return b.Families(), nil
}

// updateInfo serves /proc/cpuinfo: node_cpu_info, each CPU's current
// frequency (unless the cpufreq collector is on, see newCPUCollector), and
// the first CPU's flags and bugs that the include regexps select.
func (c *cpuCollector) updateInfo(b *collectors.CompactBuilder) error {
	info, err := c.proc.CPUInfo()
	if err != nil {
		return fmt.Errorf("reading %s/cpuinfo: %w", c.procPath, err)
	}
	for _, cpu := range info {
		b.AddValues(c.info, 1,
			hostfile.ValidLabel(cpu.PhysicalID), hostfile.ValidLabel(cpu.CoreID), strconv.Itoa(int(cpu.Processor)),
			hostfile.ValidLabel(cpu.VendorID), hostfile.ValidLabel(cpu.CPUFamily), hostfile.ValidLabel(cpu.Model), hostfile.ValidLabel(cpu.ModelName),
			hostfile.ValidLabel(cpu.Microcode), hostfile.ValidLabel(cpu.Stepping), hostfile.ValidLabel(cpu.CacheSize))
	}
	if c.frequency {
		for _, cpu := range info {
			b.AddValues(c.frequencyDesc, cpu.CPUMHz*1e6,
				hostfile.ValidLabel(cpu.PhysicalID), hostfile.ValidLabel(cpu.CoreID), strconv.Itoa(int(cpu.Processor)))
		}
	}
	if len(info) == 0 {
		return nil
	}
	for _, f := range []struct {
		values []string
		re     *regexp.Regexp
		desc   *collectors.CompactDesc
	}{
		{info[0].Flags, c.flagsRE, c.flagInfo},
		{info[0].Bugs, c.bugsRE, c.bugInfo},
	} {
		if f.re == nil {
			continue
		}
		for _, v := range f.values {
			if f.re.MatchString(v) {
				b.AddValues(f.desc, 1, hostfile.ValidLabel(v))
			}
		}
	}
	return nil
}

func (c *cpuCollector) updateStat(b *collectors.CompactBuilder) error {
	stat, err := c.proc.Stat()
	if err != nil {
		return fmt.Errorf("reading %s/stat: %w", c.procPath, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advance(stat.CPU)
	if c.labels == nil {
		c.labels = map[int64]*cpuLabels{}
	}
	for id := range c.labels {
		if _, ok := c.last[id]; !ok {
			delete(c.labels, id)
		}
	}
	for id, s := range c.last {
		ls := c.labels[id]
		if ls == nil {
			ls = newCPULabels(id)
			c.labels[id] = ls
		}
		b.AddLabels(c.seconds, s.User, ls.user)
		b.AddLabels(c.seconds, s.Nice, ls.nice)
		b.AddLabels(c.seconds, s.System, ls.system)
		b.AddLabels(c.seconds, s.Idle, ls.idle)
		b.AddLabels(c.seconds, s.Iowait, ls.iowait)
		b.AddLabels(c.seconds, s.IRQ, ls.irq)
		b.AddLabels(c.seconds, s.SoftIRQ, ls.softirq)
		b.AddLabels(c.seconds, s.Steal, ls.steal)
		if c.cfg.guest {
			// Guest time is also counted in user and nice; served apart.
			b.AddLabels(c.guest, s.Guest, ls.user)
			b.AddLabels(c.guest, s.GuestNice, ls.nice)
		}
	}
	return nil
}

// cpuLabels are one CPU's label sets, {cpu, mode} per mode.
type cpuLabels struct {
	user, nice, system, idle, iowait, irq, softirq, steal *exposition.LabelSet
}

func newCPULabels(id int64) *cpuLabels {
	cpu := strconv.FormatInt(id, 10)
	set := func(mode string) *exposition.LabelSet { return collectors.LabelSet("cpu", cpu, "mode", mode) }
	return &cpuLabels{user: set("user"), nice: set("nice"), system: set("system"), idle: set("idle"),
		iowait: set("iowait"), irq: set("irq"), softirq: set("softirq"), steal: set("steal")}
}

// advance folds a new reading into c.last (c.mu held): each counter moves
// only forward, a CPU whose idle time jumped back by cpuJumpBackSeconds or
// more starts over (hotplug), and CPUs gone from /proc/stat are dropped.
func (c *cpuCollector) advance(now map[int64]procfs.CPUStat) {
	for id, n := range now {
		old := c.last[id]
		if old.Idle-n.Idle >= cpuJumpBackSeconds {
			c.logger.Debug("CPU idle counter jumped backwards; possible hotplug event, resetting CPU stats",
				"cpu", id, "old_value", old.Idle, "new_value", n.Idle)
			old = procfs.CPUStat{}
		}
		for _, f := range []struct {
			mode     string
			old      *float64
			newValue float64
		}{
			{"idle", &old.Idle, n.Idle},
			{"user", &old.User, n.User},
			{"nice", &old.Nice, n.Nice},
			{"system", &old.System, n.System},
			{"iowait", &old.Iowait, n.Iowait},
			{"irq", &old.IRQ, n.IRQ},
			{"softirq", &old.SoftIRQ, n.SoftIRQ},
			{"steal", &old.Steal, n.Steal},
			{"guest", &old.Guest, n.Guest},
			{"guest_nice", &old.GuestNice, n.GuestNice},
		} {
			if f.newValue >= *f.old {
				*f.old = f.newValue
			} else {
				c.logger.Debug("CPU counter jumped backwards", "cpu", id, "mode", f.mode, "old_value", *f.old, "new_value", f.newValue)
			}
		}
		c.last[id] = old
	}
	maps.DeleteFunc(c.last, func(id int64, _ procfs.CPUStat) bool {
		_, ok := now[id]
		return !ok
	})
}

// updateThrottles serves thermal throttle counts, read once per core and
// once per package, as node_exporter does: a CPU needs only
// topology/physical_package_id and topology/core_id (not the sibling
// lists), and core and package counts are read apart, since some
// CPU and kernel combinations have only core_throttle_count. CPUs without
// topology or throttle files are skipped.
func (c *cpuCollector) updateThrottles(cpus []sysfs.CPU, b *collectors.CompactBuilder) {
	packages := map[string]uint64{}
	cores := map[cpuCore]uint64{}
	read := func(cpu sysfs.CPU, file string) (uint64, bool) {
		v, err := hostfile.ReadUintFile(filepath.Join(string(cpu), "thermal_throttle", file))
		if err != nil {
			c.logger.Debug("CPU has no thermal throttle count", "cpu", cpu.Number(), "file", file, "err", err)
			return 0, false
		}
		return v, true
	}
	// thermal_throttle is Intel's therm_throt, on every online CPU or on
	// none: without it on the first CPU with a topology (AMD, arm64,
	// virtual machines), there is nothing to read, and trying two files
	// per CPU every scrape is two failed opens per CPU.
	for _, cpu := range cpus {
		if _, ok := c.core(cpu); !ok {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(string(cpu), "thermal_throttle"), &st); errors.Is(err, unix.ENOENT) {
			return
		}
		break
	}
	seenCore, seenPkg := map[cpuCore]bool{}, map[string]bool{}
	for _, cpu := range cpus {
		k, ok := c.core(cpu)
		if !ok {
			continue
		}
		if !seenCore[k] {
			seenCore[k] = true
			if n, ok := read(cpu, "core_throttle_count"); ok {
				cores[k] = n
			}
		}
		if !seenPkg[k.pkg] {
			seenPkg[k.pkg] = true
			if n, ok := read(cpu, "package_throttle_count"); ok {
				packages[k.pkg] = n
			}
		}
	}
	for pkg, n := range packages {
		b.AddValues(c.packageThrottles, float64(n), pkg)
	}
	for k, n := range cores {
		b.AddValues(c.coreThrottles, float64(n), k.pkg, k.core)
	}
}

// core returns cpu's package and core id from sysfs topology, remembered
// once read; false when the CPU has none (offline, or a malformed id).
// Only the two id files are read: procfs' Topology also needs the sibling
// lists, which some kernels and virtual machines do not provide.
func (c *cpuCollector) core(cpu sysfs.CPU) (cpuCore, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.cores[cpu]; ok {
		return k, true
	}
	topo := filepath.Join(string(cpu), "topology")
	// Parsed as numbers and formatted back, so "007" and "7" label the
	// same package, as node_exporter's integer parse does.
	pkg, err := hostfile.ReadUintFile(filepath.Join(topo, "physical_package_id"))
	if err != nil {
		c.logger.Debug("CPU has no readable physical_package_id", "cpu", cpu.Number(), "err", err)
		return cpuCore{}, false
	}
	id, err := hostfile.ReadUintFile(filepath.Join(topo, "core_id"))
	if err != nil {
		c.logger.Debug("CPU has no readable core_id", "cpu", cpu.Number(), "err", err)
		return cpuCore{}, false
	}
	k := cpuCore{strconv.FormatUint(pkg, 10), strconv.FormatUint(id, 10)}
	c.cores[cpu] = k
	return k, true
}

// updateOnline serves cpuN/online. Kernels without CPU hotplug have no
// online file for cpu0 (nor, often, for any CPU): then nothing is served.
func (c *cpuCollector) updateOnline(cpus []sysfs.CPU, b *collectors.CompactBuilder) {
	if len(cpus) == 0 {
		return
	}
	if _, err := cpus[0].Online(); errors.Is(err, fs.ErrNotExist) {
		return
	}
	for _, cpu := range cpus {
		v := 0.0
		if on, _ := cpu.Online(); on {
			v = 1
		}
		b.AddValues(c.online, v, cpu.Number())
	}
}
