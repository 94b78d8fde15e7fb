package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "nvme",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newNVMeCollector(env), nil }
		},
	})
}

// nvmeCollector serves NVMe controllers and their namespaces from
// /sys/class/nvme.
//
// Sizes: the block layer's size attribute counts 512-byte sectors whatever
// the namespace's logical block size, so node_nvme_namespace_size_bytes and
// _capacity_bytes are size × 512 (procfs v0.23). node_exporter 1.12 (procfs
// v0.21) multiplies by the logical block size instead, which overstates
// 4 KiB-formatted namespaces eightfold; both agree on 512-byte namespaces.
// nuse counts logical blocks, so node_nvme_namespace_used_bytes is
// nuse × logical block size in both.
type nvmeCollector struct {
	sys     sysfs.FS
	sysPath string
	logger  *slog.Logger

	info, namespaceInfo, capacity, size, used, blockSize *prometheus.Desc
}

func newNVMeCollector(env collectors.Env) *nvmeCollector {
	ns := []string{"device", "nsid"}
	return &nvmeCollector{
		sys:     env.Sys,
		sysPath: env.Paths.SysFS,
		logger:  env.Logger,
		info: prometheus.NewDesc("node_nvme_info",
			"Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
			[]string{"device", "firmware_revision", "model", "serial", "state", "cntlid"}, nil),
		namespaceInfo: prometheus.NewDesc("node_nvme_namespace_info",
			"Information about NVMe namespaces. Value is always 1", []string{"device", "nsid", "ana_state"}, nil),
		capacity: prometheus.NewDesc("node_nvme_namespace_capacity_bytes",
			"Capacity of the NVMe namespace in bytes. Computed as namespace_size * namespace_logical_block_size", ns, nil),
		size: prometheus.NewDesc("node_nvme_namespace_size_bytes",
			"Size of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/size", ns, nil),
		used: prometheus.NewDesc("node_nvme_namespace_used_bytes",
			"Used space of the NVMe namespace in bytes. Available in /sys/class/nvme/<device>/<namespace>/nuse", ns, nil),
		blockSize: prometheus.NewDesc("node_nvme_namespace_logical_block_size_bytes",
			"Logical block size of the NVMe namespace in bytes. Usually 4Kb. Available in /sys/class/nvme/<device>/<namespace>/queue/logical_block_size", ns, nil),
	}
}

func (c *nvmeCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	// Only a missing class means "no NVMe here"; a file missing inside a
	// device is an error (node_exporter reports no data for both).
	if _, err := os.Stat(filepath.Join(c.sysPath, "class", "nvme")); errors.Is(err, fs.ErrNotExist) {
		c.logger.Debug("nvme: no NVMe class", "err", err)
		return fmt.Errorf("%w: %w", collectors.ErrNoData, err)
	}
	devices, err := c.sys.NVMeClass()
	if err != nil {
		return fmt.Errorf("reading NVMe devices: %w", err)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, d := range devices {
		dev := hostfile.ValidLabel(d.Name)
		gauge(c.info, 1, dev, hostfile.ValidLabel(d.FirmwareRevision), hostfile.ValidLabel(d.Model), hostfile.ValidLabel(d.Serial),
			hostfile.ValidLabel(d.State), hostfile.ValidLabel(d.ControllerID))
		for _, ns := range d.Namespaces {
			id := hostfile.ValidLabel(ns.ID)
			gauge(c.namespaceInfo, 1, dev, id, hostfile.ValidLabel(ns.ANAState))
			gauge(c.capacity, float64(ns.CapacityBytes), dev, id)
			gauge(c.size, float64(ns.SizeBytes), dev, id)
			if nuse, ok := c.readNuse(ns); ok {
				gauge(c.used, float64(nuse*ns.LogicalBlockSize), dev, id)
			}
			gauge(c.blockSize, float64(ns.LogicalBlockSize), dev, id)
		}
	}
	return nil
}

// readNuse reads the namespace's utilisation in logical blocks, which
// procfs does not. Kernels before 5.x lack the file: the namespace is then
// served without node_nvme_namespace_used_bytes (node_exporter 1.12 fails
// the whole collector).
func (c *nvmeCollector) readNuse(ns sysfs.NVMeNamespace) (uint64, bool) {
	path := filepath.Join(ns.Path, "nuse")
	s, err := hostfile.ReadSysfsAttr(path)
	if err != nil {
		c.logger.Debug("nvme: no namespace utilisation", "file", path, "err", err)
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		c.logger.Debug("nvme: unparsable namespace utilisation", "file", path, "err", err)
		return 0, false
	}
	return v, true
}
