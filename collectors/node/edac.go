package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "edac",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newEdacCollector(env), nil }
		},
	})
}

// edacCollector serves ECC memory error counts per memory controller, chip
// select row and channel from /sys/devices/system/edac/mc, which procfs does
// not read. Counters are single decimal numbers, read with readUintFile.
type edacCollector struct {
	mcDir string // <sysfs>/devices/system/edac/mc

	ce, ue, csrowCE, csrowUE, channelCE, channelUE *prometheus.Desc
	channelRE                                      *regexp.Regexp // ch<N>_ce_count
}

func newEdacCollector(env collectors.Env) *edacCollector {
	return &edacCollector{
		mcDir: filepath.Join(env.Paths.SysFS, "devices", "system", "edac", "mc"),
		ce: prometheus.NewDesc("node_edac_correctable_errors_total",
			"Total correctable memory errors.", []string{"controller"}, nil),
		ue: prometheus.NewDesc("node_edac_uncorrectable_errors_total",
			"Total uncorrectable memory errors.", []string{"controller"}, nil),
		csrowCE: prometheus.NewDesc("node_edac_csrow_correctable_errors_total",
			"Total correctable memory errors for this csrow.", []string{"controller", "csrow"}, nil),
		csrowUE: prometheus.NewDesc("node_edac_csrow_uncorrectable_errors_total",
			"Total uncorrectable memory errors for this csrow.", []string{"controller", "csrow"}, nil),
		channelCE: prometheus.NewDesc("node_edac_channel_correctable_errors_total",
			"Total correctable memory errors for this channel.", []string{"controller", "csrow", "channel", "dimm_label"}, nil),
		channelUE: prometheus.NewDesc("node_edac_channel_uncorrectable_errors_total",
			"Total uncorrectable memory errors for this channel.", []string{"controller", "csrow", "channel", "dimm_label"}, nil),
		channelRE: regexp.MustCompile(`^ch([0-9]+)_ce_count$`),
	}
}

func (c *edacCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	// No controllers (no ECC memory, or no EDAC driver) is nothing to
	// report, as for node_exporter.
	controllers, err := filepath.Glob(filepath.Join(c.mcDir, "mc[0-9]*"))
	if err != nil {
		return fmt.Errorf("listing EDAC memory controllers: %w", err)
	}
	if len(controllers) == 0 {
		return fmt.Errorf("%w: no EDAC memory controller in %s", collectors.ErrNoData, c.mcDir)
	}
	var errs []error
	for _, dir := range controllers {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.updateController(ch, dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *edacCollector) updateController(ch chan<- prometheus.Metric, dir string) error {
	mc := strings.TrimPrefix(filepath.Base(dir), "mc")
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	// Errors the driver could not attribute to a csrow are served as
	// csrow "unknown".
	for _, f := range []struct {
		file        string
		total, rows *prometheus.Desc
	}{
		{"ce_count", c.ce, nil}, {"ce_noinfo_count", nil, c.csrowCE},
		{"ue_count", c.ue, nil}, {"ue_noinfo_count", nil, c.csrowUE},
	} {
		v, err := hostfile.ReadUintFile(filepath.Join(dir, f.file))
		if err != nil {
			return fmt.Errorf("EDAC controller %s: %w", mc, err)
		}
		if f.total != nil {
			counter(f.total, v, mc)
		} else {
			counter(f.rows, v, mc, "unknown")
		}
	}

	csrows, err := filepath.Glob(filepath.Join(dir, "csrow[0-9]*"))
	if err != nil {
		return fmt.Errorf("EDAC controller %s: listing csrows: %w", mc, err)
	}
	for _, rowDir := range csrows {
		row := strings.TrimPrefix(filepath.Base(rowDir), "csrow")
		ce, err := hostfile.ReadUintFile(filepath.Join(rowDir, "ce_count"))
		if err != nil {
			return fmt.Errorf("EDAC controller %s: %w", mc, err)
		}
		counter(c.csrowCE, ce, mc, row)
		ue, err := hostfile.ReadUintFile(filepath.Join(rowDir, "ue_count"))
		if err != nil {
			return fmt.Errorf("EDAC controller %s: %w", mc, err)
		}
		counter(c.csrowUE, ue, mc, row)

		files, err := filepath.Glob(filepath.Join(rowDir, "ch*_ce_count"))
		if err != nil {
			return fmt.Errorf("EDAC controller %s: listing channels: %w", mc, err)
		}
		for _, f := range files {
			m := c.channelRE.FindStringSubmatch(filepath.Base(f))
			if m == nil {
				continue
			}
			channel := m[1]
			label := edacDimmLabel(rowDir, channel)
			ce, err := hostfile.ReadUintFile(f)
			if err != nil {
				return fmt.Errorf("EDAC controller %s: %w", mc, err)
			}
			counter(c.channelCE, ce, mc, row, channel, label)
			// Not every driver counts uncorrectable errors per channel.
			if ue, err := hostfile.ReadUintFile(filepath.Join(rowDir, "ch"+channel+"_ue_count")); err == nil {
				counter(c.channelUE, ue, mc, row, channel, label)
			}
		}
	}
	return nil
}

// edacDimmLabel reads a channel's DIMM label ("unknown" without one),
// cleaned as node_exporter cleans it: '#' removed, "csrow" and "channel"
// prefixed with '_'.
func edacDimmLabel(rowDir, channel string) string {
	b, err := os.ReadFile(filepath.Join(rowDir, "ch"+channel+"_dimm_label"))
	if err != nil {
		return "unknown"
	}
	return cleanEdacDimmLabel(string(b))
}

func cleanEdacDimmLabel(s string) string {
	s = strings.ReplaceAll(strings.TrimSpace(s), "#", "")
	s = strings.ReplaceAll(s, "csrow", "_csrow")
	return hostfile.ValidLabel(strings.ReplaceAll(s, "channel", "_channel"))
}
