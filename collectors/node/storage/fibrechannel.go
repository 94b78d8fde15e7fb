package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "fibrechannel",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newFibreChannelCollector(env), nil }
		},
	})
}

// fibrechannelCollector serves /sys/class/fc_host/<host>/ as node_exporter
// does: an info series with the port's attributes and a counter per
// statistics file.
type fibrechannelCollector struct {
	sys     sysfs.FS
	sysPath string

	info                                                                  *prometheus.Desc
	dumpedFrames, errorFrames, invalidCRC, rxFrames, rxWords              *prometheus.Desc
	txFrames, txWords, secondsSinceLastReset, invalidTXWords, linkFailure *prometheus.Desc
	lossOfSync, lossOfSignal, nos, fcpPacketAborts                        *prometheus.Desc
}

func newFibreChannelCollector(env collectors.Env) *fibrechannelCollector {
	host := []string{"fc_host"}
	return &fibrechannelCollector{
		sys:     env.Sys,
		sysPath: env.Paths.SysFS,
		info: prometheus.NewDesc("node_fibrechannel_info",
			"Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
			[]string{"fc_host", "speed", "port_state", "port_type", "port_id", "port_name", "fabric_name",
				"symbolic_name", "supported_classes", "supported_speeds", "dev_loss_tmo"}, nil),
		dumpedFrames:          prometheus.NewDesc("node_fibrechannel_dumped_frames_total", "Number of dumped frames", host, nil),
		errorFrames:           prometheus.NewDesc("node_fibrechannel_error_frames_total", "Number of errors in frames", host, nil),
		invalidCRC:            prometheus.NewDesc("node_fibrechannel_invalid_crc_total", "Invalid Cyclic Redundancy Check count", host, nil),
		rxFrames:              prometheus.NewDesc("node_fibrechannel_rx_frames_total", "Number of frames received", host, nil),
		rxWords:               prometheus.NewDesc("node_fibrechannel_rx_words_total", "Number of words received by host port", host, nil),
		txFrames:              prometheus.NewDesc("node_fibrechannel_tx_frames_total", "Number of frames transmitted by host port", host, nil),
		txWords:               prometheus.NewDesc("node_fibrechannel_tx_words_total", "Number of words transmitted by host port", host, nil),
		secondsSinceLastReset: prometheus.NewDesc("node_fibrechannel_seconds_since_last_reset_total", "Number of seconds since last host port reset", host, nil),
		invalidTXWords:        prometheus.NewDesc("node_fibrechannel_invalid_tx_words_total", "Number of invalid words transmitted by host port", host, nil),
		linkFailure:           prometheus.NewDesc("node_fibrechannel_link_failure_total", "Number of times the host port link has failed", host, nil),
		lossOfSync:            prometheus.NewDesc("node_fibrechannel_loss_of_sync_total", "Number of failures on either bit or transmission word boundaries", host, nil),
		lossOfSignal:          prometheus.NewDesc("node_fibrechannel_loss_of_signal_total", "Number of times signal has been lost", host, nil),
		nos:                   prometheus.NewDesc("node_fibrechannel_nos_total", "Number Not_Operational Primitive Sequence received by host port", host, nil),
		fcpPacketAborts:       prometheus.NewDesc("node_fibrechannel_fcp_packet_aborts_total", "Number of aborted packets", host, nil),
	}
}

func (c *fibrechannelCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	hosts, err := c.sys.FibreChannelClass()
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s/class/fc_host: %w", collectors.ErrNoData, c.sysPath, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s/class/fc_host: %w", c.sysPath, err)
	}
	for _, h := range hosts {
		name := hostfile.StringOrEmpty(h.Name)
		ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, name,
			hostfile.StringOrEmpty(h.Speed), hostfile.StringOrEmpty(h.PortState), hostfile.StringOrEmpty(h.PortType),
			hostfile.StringOrEmpty(h.PortID), hostfile.StringOrEmpty(h.PortName), hostfile.StringOrEmpty(h.FabricName),
			hostfile.StringOrEmpty(h.SymbolicName), hostfile.StringOrEmpty(h.SupportedClasses),
			hostfile.StringOrEmpty(h.SupportedSpeeds), hostfile.StringOrEmpty(h.DevLossTMO))
		if h.Counters == nil {
			continue
		}
		s := h.Counters
		for _, m := range []struct {
			desc  *prometheus.Desc
			value *uint64
		}{
			{c.dumpedFrames, s.DumpedFrames},
			{c.errorFrames, s.ErrorFrames},
			{c.invalidCRC, s.InvalidCRCCount},
			{c.rxFrames, s.RXFrames},
			{c.rxWords, s.RXWords},
			{c.txFrames, s.TXFrames},
			{c.txWords, s.TXWords},
			{c.secondsSinceLastReset, s.SecondsSinceLastReset},
			{c.invalidTXWords, s.InvalidTXWordCount},
			{c.linkFailure, s.LinkFailureCount},
			{c.lossOfSync, s.LossOfSyncCount},
			{c.lossOfSignal, s.LossOfSignalCount},
			{c.nos, s.NosCount},
			{c.fcpPacketAborts, s.FCPPacketAborts},
		} {
			// The HBA firmware reports a counter it does not implement as
			// all ones. A statistics file the driver does not provide is
			// absent; node_exporter 1.12 crashes on it, here it is skipped.
			if m.value == nil || *m.value == math.MaxUint64 {
				continue
			}
			ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(*m.value), name)
		}
	}
	return nil
}
