package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "dmi",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newDMICollector(env), nil }
		},
	})
}

// dmiCollector serves node_dmi_info from /sys/class/dmi/id as node_exporter
// does. DMI describes the hardware and firmware and changes only across a
// reboot, so the first complete reading is kept (node_exporter reads it once
// at startup); a failed reading is retried at the next scrape.
type dmiCollector struct {
	sys     sysfs.FS
	sysPath string

	mu     sync.Mutex
	metric prometheus.Metric // nil until read
}

func newDMICollector(env collectors.Env) *dmiCollector {
	return &dmiCollector{sys: env.Sys, sysPath: env.Paths.SysFS}
}

func (c *dmiCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.metric == nil {
		m, err := c.read()
		if err != nil {
			return err
		}
		c.metric = m
	}
	ch <- c.metric
	return nil
}

func (c *dmiCollector) read() (prometheus.Metric, error) {
	dmi, err := c.sys.DMIClass()
	if errors.Is(err, fs.ErrNotExist) {
		// Not every platform has DMI (arm64 boards without SMBIOS, some VMs).
		return nil, fmt.Errorf("%w: %s/class/dmi/id: %w", collectors.ErrNoData, c.sysPath, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading DMI information: %w", err)
	}
	var names, values []string
	for _, f := range []struct {
		label string
		value *string
	}{
		{"bios_date", dmi.BiosDate},
		{"bios_release", dmi.BiosRelease},
		{"bios_vendor", dmi.BiosVendor},
		{"bios_version", dmi.BiosVersion},
		{"board_asset_tag", dmi.BoardAssetTag},
		{"board_name", dmi.BoardName},
		{"board_serial", dmi.BoardSerial},
		{"board_vendor", dmi.BoardVendor},
		{"board_version", dmi.BoardVersion},
		{"chassis_asset_tag", dmi.ChassisAssetTag},
		{"chassis_serial", dmi.ChassisSerial},
		{"chassis_vendor", dmi.ChassisVendor},
		{"chassis_version", dmi.ChassisVersion},
		{"product_family", dmi.ProductFamily},
		{"product_name", dmi.ProductName},
		{"product_serial", dmi.ProductSerial},
		{"product_sku", dmi.ProductSKU},
		{"product_uuid", dmi.ProductUUID},
		{"product_version", dmi.ProductVersion},
		{"system_vendor", dmi.SystemVendor},
	} {
		// Files only root may read (serials, product_uuid) are absent
		// when nodeagent runs unprivileged; their labels are left out.
		if f.value != nil {
			names = append(names, f.label)
			// Firmware strings are not always UTF-8.
			values = append(values, strings.ToValidUTF8(*f.value, "\uFFFD"))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: no DMI fields in %s/class/dmi/id", collectors.ErrNoData, c.sysPath)
	}
	desc := prometheus.NewDesc("node_dmi_info",
		"A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, bios_version, "+
			"board_asset_tag, board_name, board_serial, board_vendor, board_version, chassis_asset_tag, "+
			"chassis_serial, chassis_vendor, chassis_version, product_family, product_name, product_serial, "+
			"product_sku, product_uuid, product_version, system_vendor if provided by DMI.",
		names, nil)
	return prometheus.NewConstMetric(desc, prometheus.GaugeValue, 1, values...)
}
