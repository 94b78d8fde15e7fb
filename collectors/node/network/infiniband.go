package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/devicefilter"
)

// infinibandConfig holds the infiniband collector's flags.
type infinibandConfig struct {
	deviceInclude, deviceExclude string
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "infiniband",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &infinibandConfig{}
			app.Flag("collector.infiniband.device-include", "Regexp of infiniband devices to include (mutually exclusive to device-exclude).").
				StringVar(&cfg.deviceInclude)
			app.Flag("collector.infiniband.device-exclude", "Regexp of infiniband devices to exclude (mutually exclusive to device-include).").
				StringVar(&cfg.deviceExclude)
			return func(env collectors.Env) (collectors.Collector, error) { return newInfiniBandCollector(env, *cfg) }
		},
	})
}

// infinibandCollector serves /sys/class/infiniband/<device>/ports/<port>/
// as node_exporter does: port state and rate, the IB port counters and the
// driver's hw_counters (mlx5's RoCE counters among them).
type infinibandCollector struct {
	sys     sysfs.FS
	sysPath string
	filter  devicefilter.Filter

	info, state, physState, rate, lifespan *prometheus.Desc
	counters                               []infinibandCounter
}

// infinibandCounter is one per-port counter series and the value it reads;
// nil means the driver does not provide the file.
type infinibandCounter struct {
	desc  *prometheus.Desc
	value func(*sysfs.InfiniBandPort) *uint64
}

func newInfiniBandCollector(env collectors.Env, cfg infinibandConfig) (*infinibandCollector, error) {
	filter, err := devicefilter.New("collector.infiniband.device-exclude", cfg.deviceExclude, "collector.infiniband.device-include", cfg.deviceInclude)
	if err != nil {
		return nil, err
	}
	if cfg.deviceInclude != "" {
		env.Logger.Info("Parsed flag --collector.infiniband.device-include", "flag", cfg.deviceInclude)
	}
	if cfg.deviceExclude != "" {
		env.Logger.Info("Parsed flag --collector.infiniband.device-exclude", "flag", cfg.deviceExclude)
	}
	port := []string{"device", "port"}
	return &infinibandCollector{
		sys:     env.Sys,
		sysPath: env.Paths.SysFS,
		filter:  filter,
		info: prometheus.NewDesc("node_infiniband_info",
			"Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
			[]string{"device", "board_id", "firmware_version", "hca_type"}, nil),
		state: prometheus.NewDesc("node_infiniband_state_id",
			"State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)", port, nil),
		physState: prometheus.NewDesc("node_infiniband_physical_state_id",
			"Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)", port, nil),
		rate: prometheus.NewDesc("node_infiniband_rate_bytes_per_second",
			"Maximum signal transfer rate", port, nil),
		lifespan: prometheus.NewDesc("node_infiniband_lifespan_seconds",
			"The maximum period in ms which defines the aging of the counter reads. Two consecutive reads within this period might return the same values.", port, nil),
		counters: []infinibandCounter{
			{prometheus.NewDesc("node_infiniband_legacy_multicast_packets_received_total",
				"Number of multicast packets received", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LegacyPortMulticastRcvPackets }},
			{prometheus.NewDesc("node_infiniband_legacy_multicast_packets_transmitted_total",
				"Number of multicast packets transmitted", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LegacyPortMulticastXmitPackets }},
			{prometheus.NewDesc("node_infiniband_legacy_data_received_bytes_total",
				"Number of data octets received on all links", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LegacyPortRcvData64 }},
			{prometheus.NewDesc("node_infiniband_legacy_packets_received_total",
				"Number of data packets received on all links", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LegacyPortRcvPackets64 }},
			{prometheus.NewDesc("node_infiniband_legacy_unicast_packets_received_total",
				"Number of unicast packets received", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LegacyPortUnicastRcvPackets }},
			{prometheus.NewDesc("node_infiniband_legacy_unicast_packets_transmitted_total",
				"Number of unicast packets transmitted", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LegacyPortUnicastXmitPackets }},
			{prometheus.NewDesc("node_infiniband_legacy_data_transmitted_bytes_total",
				"Number of data octets transmitted on all links", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LegacyPortXmitData64 }},
			{prometheus.NewDesc("node_infiniband_legacy_packets_transmitted_total",
				"Number of data packets received on all links", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LegacyPortXmitPackets64 }},
			{prometheus.NewDesc("node_infiniband_excessive_buffer_overrun_errors_total",
				"Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.ExcessiveBufferOverrunErrors }},
			{prometheus.NewDesc("node_infiniband_link_downed_total",
				"Number of times the link failed to recover from an error state and went down", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LinkDowned }},
			{prometheus.NewDesc("node_infiniband_link_error_recovery_total",
				"Number of times the link successfully recovered from an error state", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LinkErrorRecovery }},
			{prometheus.NewDesc("node_infiniband_local_link_integrity_errors_total",
				"Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.LocalLinkIntegrityErrors }},
			{prometheus.NewDesc("node_infiniband_multicast_packets_received_total",
				"Number of multicast packets received (including errors)", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.MulticastRcvPackets }},
			{prometheus.NewDesc("node_infiniband_multicast_packets_transmitted_total",
				"Number of multicast packets transmitted (including errors)", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.MulticastXmitPackets }},
			{prometheus.NewDesc("node_infiniband_port_constraint_errors_received_total",
				"Number of packets received on the switch physical port that are discarded", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortRcvConstraintErrors }},
			{prometheus.NewDesc("node_infiniband_port_constraint_errors_transmitted_total",
				"Number of packets not transmitted from the switch physical port", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortXmitConstraintErrors }},
			{prometheus.NewDesc("node_infiniband_port_data_received_bytes_total",
				"Number of data octets received on all links", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortRcvData }},
			{prometheus.NewDesc("node_infiniband_port_data_transmitted_bytes_total",
				"Number of data octets transmitted on all links", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortXmitData }},
			{prometheus.NewDesc("node_infiniband_port_discards_received_total",
				"Number of inbound packets discarded by the port because the port is down or congested", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortRcvDiscards }},
			{prometheus.NewDesc("node_infiniband_port_discards_transmitted_total",
				"Number of outbound packets discarded by the port because the port is down or congested", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortXmitDiscards }},
			{prometheus.NewDesc("node_infiniband_port_errors_received_total",
				"Number of packets containing an error that were received on this port", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortRcvErrors }},
			{prometheus.NewDesc("node_infiniband_port_packets_received_total",
				"Number of packets received on all VLs by this port (including errors)", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortRcvPackets }},
			{prometheus.NewDesc("node_infiniband_port_packets_transmitted_total",
				"Number of packets transmitted on all VLs from this port (including errors)", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortXmitPackets }},
			{prometheus.NewDesc("node_infiniband_port_transmit_wait_total",
				"Number of ticks during which the port had data to transmit but no data was sent during the entire tick", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortXmitWait }},
			{prometheus.NewDesc("node_infiniband_unicast_packets_received_total",
				"Number of unicast packets received (including errors)", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.UnicastRcvPackets }},
			{prometheus.NewDesc("node_infiniband_unicast_packets_transmitted_total",
				"Number of unicast packets transmitted (including errors)", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.UnicastXmitPackets }},
			{prometheus.NewDesc("node_infiniband_port_receive_remote_physical_errors_total",
				"Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortRcvRemotePhysicalErrors }},
			{prometheus.NewDesc("node_infiniband_port_receive_switch_relay_errors_total",
				"Number of packets that could not be forwarded by the switch.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.PortRcvSwitchRelayErrors }},
			{prometheus.NewDesc("node_infiniband_symbol_error_total",
				"Number of minor link errors detected on one or more physical lanes.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.SymbolError }},
			{prometheus.NewDesc("node_infiniband_vl15_dropped_total",
				"Number of incoming VL15 packets dropped due to resource limitations.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.Counters.VL15Dropped }},
			{prometheus.NewDesc("node_infiniband_duplicate_requests_packets_total",
				"The number of received packets. A duplicate request is a request that had been previously executed.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.DuplicateRequest }},
			{prometheus.NewDesc("node_infiniband_implied_nak_seq_errors_total",
				"The number of time the requested decided an ACK. with a PSN larger than the expected PSN for an RDMA read or response.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.ImpliedNakSeqErr }},
			{prometheus.NewDesc("node_infiniband_local_ack_timeout_errors_total",
				"The number of times QP's ack timer expired for RC, XRC, DCT QPs at the sender side. The QP retry limit was not exceed, therefore it is still recoverable error.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.LocalAckTimeoutErr }},
			{prometheus.NewDesc("node_infiniband_np_cnp_packets_sent_total",
				"The number of CNP packets sent by the Notification Point when it noticed congestion experienced in the RoCEv2 IP header (ECN bits). The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.NpCnpSent }},
			{prometheus.NewDesc("node_infiniband_np_ecn_marked_roce_packets_received_total",
				"The number of RoCEv2 packets received by the notification point which were marked for experiencing the congestion (ECN bits where '11' on the ingress RoCE traffic) . The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.NpEcnMarkedRocePackets }},
			{prometheus.NewDesc("node_infiniband_out_of_buffer_drops_total",
				"The number of drops occurred due to lack of WQE for the associated QPs.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.OutOfBuffer }},
			{prometheus.NewDesc("node_infiniband_out_of_sequence_packets_received_total",
				"The number of out of sequence packets received.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.OutOfSequence }},
			{prometheus.NewDesc("node_infiniband_packet_sequence_errors_total",
				"The number of received NAK sequence error packets. The QP retry limit was not exceeded.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.PacketSeqErr }},
			{prometheus.NewDesc("node_infiniband_req_cqes_errors_total",
				"The number of times requester detected CQEs completed with errors. The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.ReqCqeError }},
			{prometheus.NewDesc("node_infiniband_req_cqes_flush_errors_total",
				"The number of times requester detected CQEs completed with flushed errors. The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.ReqCqeFlushError }},
			{prometheus.NewDesc("node_infiniband_req_remote_access_errors_total",
				"The number of times requester detected remote access errors. The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.ReqRemoteAccessErrors }},
			{prometheus.NewDesc("node_infiniband_req_remote_invalid_request_errors_total",
				"The number of times requester detected remote invalid request errors. The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.ReqRemoteInvalidRequest }},
			{prometheus.NewDesc("node_infiniband_resp_cqes_errors_total",
				"The number of times responder detected CQEs completed with errors. The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RespCqeError }},
			{prometheus.NewDesc("node_infiniband_resp_cqes_flush_errors_total",
				"The number of times responder detected CQEs completed with flushed errors. The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RespCqeFlushError }},
			{prometheus.NewDesc("node_infiniband_resp_local_length_errors_total",
				"The number of times responder detected local length errors. The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RespLocalLengthError }},
			{prometheus.NewDesc("node_infiniband_resp_remote_access_errors_total",
				"The number of times responder detected remote access errors. The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RespRemoteAccessErrors }},
			{prometheus.NewDesc("node_infiniband_rnr_nak_retry_packets_received_total",
				"The number of received RNR NAK packets. The QP retry limit was not exceeded.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RnrNakRetryErr }},
			{prometheus.NewDesc("node_infiniband_roce_adp_retransmits_total",
				"The number of adaptive retransmissions for RoCE traffic. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RoceAdpRetrans }},
			{prometheus.NewDesc("node_infiniband_roce_adp_retransmits_timeout_total",
				"The number of times RoCE traffic reached timeout due to adaptive retransmission. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RoceAdpRetransTo }},
			{prometheus.NewDesc("node_infiniband_roce_slow_restart_used_total",
				"The number of times RoCE slow restart was used. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RoceSlowRestart }},
			{prometheus.NewDesc("node_infiniband_roce_slow_restart_cnps_total",
				"The number of times RoCE slow restart generated CNP packets. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RoceSlowRestartCnps }},
			{prometheus.NewDesc("node_infiniband_roce_slow_restart_total",
				"The number of times RoCE slow restart changed state to slow restart. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RoceSlowRestartTrans }},
			{prometheus.NewDesc("node_infiniband_rp_cnp_packets_handled_total",
				"The number of CNP packets handled by the Reaction Point HCA to throttle the transmission rate. The counters was added in MLNX_OFED 4.1", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RpCnpHandled }},
			{prometheus.NewDesc("node_infiniband_rp_cnp_ignored_packets_received_total",
				"The number of CNP packets received and ignored by the Reaction Point HCA. This counter should not raise if RoCE Congestion Control was enabled in the network. If this counter raise, verify that ECN was enabled on the adapter.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RpCnpIgnored }},
			{prometheus.NewDesc("node_infiniband_rx_atomic_requests_total",
				"The number of received ATOMIC request for the associated QPs.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RxAtomicRequests }},
			{prometheus.NewDesc("node_infiniband_rx_dct_connect_requests_total",
				"The number of received connection requests for the associated DCTs.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RxDctConnect }},
			{prometheus.NewDesc("node_infiniband_rx_read_requests_total",
				"The number of received READ requests for the associated QPs.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RxReadRequests }},
			{prometheus.NewDesc("node_infiniband_rx_write_requests_total",
				"The number of received WRITE requests for the associated QPs.", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RxWriteRequests }},
			{prometheus.NewDesc("node_infiniband_rx_icrc_encapsulated_errors_total",
				"The number of RoCE packets with ICRC errors. This counter was added in MLNX_OFED 4.4 and kernel 4.19", port, nil),
				func(p *sysfs.InfiniBandPort) *uint64 { return p.HwCounters.RxIcrcEncapsulated }},
		},
	}, nil
}

func (c *infinibandCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	names, err := c.sys.InfiniBandClassDevices()
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s/class/infiniband: %w", collectors.ErrNoData, c.sysPath, err)
	}
	if err != nil {
		return fmt.Errorf("listing %s/class/infiniband: %w", c.sysPath, err)
	}
	var errs []error
	for _, name := range names {
		// Filtered devices are not read at all, so a broken one that is
		// excluded does not fail the scrape.
		if c.filter.Ignored(name) {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		dev, err := c.sys.InfiniBandDevice(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading %s/class/infiniband/%s: %w", c.sysPath, name, err))
			continue
		}
		c.send(ch, dev)
	}
	return errors.Join(errs...)
}

func (c *infinibandCollector) send(ch chan<- prometheus.Metric, dev *sysfs.InfiniBandDevice) {
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1, dev.Name, dev.BoardID, dev.FirmwareVersion, dev.HCAType)
	for _, p := range dev.Ports {
		port := strconv.FormatUint(uint64(p.Port), 10)
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, float64(p.StateID), p.Name, port)
		ch <- prometheus.MustNewConstMetric(c.physState, prometheus.GaugeValue, float64(p.PhysStateID), p.Name, port)
		ch <- prometheus.MustNewConstMetric(c.rate, prometheus.GaugeValue, float64(p.Rate), p.Name, port)
		for _, m := range c.counters {
			if v := m.value(&p); v != nil {
				ch <- prometheus.MustNewConstMetric(m.desc, prometheus.CounterValue, float64(*v), p.Name, port)
			}
		}
		if p.HwCounters.Lifespan != nil {
			// Milliseconds to whole seconds, truncated as node_exporter does.
			ch <- prometheus.MustNewConstMetric(c.lifespan, prometheus.GaugeValue, float64(*p.HwCounters.Lifespan/1000), p.Name, port)
		}
	}
}
