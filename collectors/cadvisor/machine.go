package cadvisor

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "machine",
		Layer:          collectors.LayerCadvisor,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newMachineCollector(env), nil }
		},
	})
}

// machineCollector serves cAdvisor's machine_* gauges, labelled like the
// kubelet's with the boot, machine and system IDs.
type machineCollector struct {
	proc     procfs.FS
	sys      sysfs.FS
	procPath string
	sysPath  string
	rootPath string

	cores, physical, sockets, memory, swap *prometheus.Desc

	mu  sync.Mutex
	ids []string // boot_id, machine_id, system_uuid; read once, they change only with a reboot

	// The CPU counts from cpuinfo, kept while the online CPUs are the
	// same: /proc/cpuinfo is over a KiB per CPU (120 KB and 9,000 flags
	// to split on a 96-CPU host) and its topology changes only when a CPU
	// comes online or goes offline, which rewrites the online list
	// (cAdvisor reads it at start). Guarded by mu.
	online string // /sys/devices/system/cpu/online when topo was read; "" when unknown
	topo   cpuTopology
}

// cpuTopology is what machine_cpu_* count.
type cpuTopology struct{ cores, physical, sockets int }

func newMachineCollector(env collectors.Env) *machineCollector {
	labels := []string{"boot_id", "machine_id", "system_uuid"}
	return &machineCollector{
		proc:     env.Proc,
		sys:      env.Sys,
		procPath: env.Paths.ProcFS,
		sysPath:  env.Paths.SysFS,
		rootPath: env.Paths.RootFS,
		cores:    prometheus.NewDesc("machine_cpu_cores", "Number of logical CPU cores.", labels, nil),
		physical: prometheus.NewDesc("machine_cpu_physical_cores", "Number of physical CPU cores.", labels, nil),
		sockets:  prometheus.NewDesc("machine_cpu_sockets", "Number of CPU sockets.", labels, nil),
		memory:   prometheus.NewDesc("machine_memory_bytes", "Amount of memory installed on the machine.", labels, nil),
		swap:     prometheus.NewDesc("machine_swap_bytes", "Amount of swap memory available on the machine.", labels, nil),
	}
}

func (c *machineCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	ids := c.identity()
	var errs []error
	topo, err := c.topology()
	if err != nil {
		errs = append(errs, err)
	} else if topo.cores > 0 {
		ch <- prometheus.MustNewConstMetric(c.cores, prometheus.GaugeValue, float64(topo.cores), ids...)
		ch <- prometheus.MustNewConstMetric(c.physical, prometheus.GaugeValue, float64(topo.physical), ids...)
		ch <- prometheus.MustNewConstMetric(c.sockets, prometheus.GaugeValue, float64(topo.sockets), ids...)
	}
	mi, err := c.proc.Meminfo()
	if err != nil {
		errs = append(errs, fmt.Errorf("reading %s/meminfo: %w", c.procPath, err))
	} else {
		if mi.MemTotalBytes != nil {
			ch <- prometheus.MustNewConstMetric(c.memory, prometheus.GaugeValue, float64(*mi.MemTotalBytes), ids...)
		}
		if mi.SwapTotalBytes != nil {
			ch <- prometheus.MustNewConstMetric(c.swap, prometheus.GaugeValue, float64(*mi.SwapTotalBytes), ids...)
		}
	}
	return errors.Join(errs...)
}

// topology counts the online CPUs, the physical cores and the sockets from
// cpuinfo, read again only when the online CPUs have changed, or every
// time where the online list cannot be read (a tree without sysfs).
func (c *machineCollector) topology() (cpuTopology, error) {
	online := ""
	if c.sysPath != "" {
		// One read(2) of a line such as "0-95".
		online, _ = hostfile.ReadSysfsAttr(filepath.Join(c.sysPath, "devices", "system", "cpu", "online"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if online != "" && online == c.online {
		return c.topo, nil
	}
	cpus, err := c.proc.CPUInfo()
	if err != nil {
		c.online = ""
		return cpuTopology{}, fmt.Errorf("reading %s/cpuinfo: %w", c.procPath, err)
	}
	cores := map[[2]string]bool{}
	sockets := map[string]bool{}
	for _, cpu := range cpus {
		// Architectures whose cpuinfo has no topology (arm64) count
		// each processor as a core of one socket.
		core := cpu.CoreID
		if cpu.PhysicalID == "" && core == "" {
			core = fmt.Sprint(cpu.Processor)
		}
		cores[[2]string{cpu.PhysicalID, core}] = true
		sockets[cpu.PhysicalID] = true
	}
	c.online, c.topo = online, cpuTopology{cores: len(cpus), physical: len(cores), sockets: len(sockets)}
	return c.topo, nil
}

// identity returns the boot ID (/proc/sys/kernel/random/boot_id), the
// machine ID (/etc/machine-id, else /var/lib/dbus/machine-id, under
// --path.rootfs) and the system UUID (DMI product_uuid, readable by root
// only), "" for any that cannot be read.
func (c *machineCollector) identity() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids != nil {
		return c.ids
	}
	bootID := readSmallFile(filepath.Join(c.procPath, "sys", "kernel", "random", "boot_id"))
	machineID := readSmallFile(filepath.Join(c.rootPath, "etc", "machine-id"))
	if machineID == "" {
		machineID = readSmallFile(filepath.Join(c.rootPath, "var", "lib", "dbus", "machine-id"))
	}
	uuid := ""
	if c.sys != (sysfs.FS{}) {
		if dmi, err := c.sys.DMIClass(); err == nil && dmi.ProductUUID != nil {
			uuid = *dmi.ProductUUID
		}
	}
	c.ids = []string{bootID, machineID, uuid}
	return c.ids
}

// readSmallFile returns a one-line file's trimmed content, "" on error.
func readSmallFile(path string) string {
	b, err := hostfile.ReadProcFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
