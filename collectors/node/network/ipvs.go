package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
)

// ipvsBackendLabels are the label names --collector.ipvs.backend-labels may
// choose from, in node_exporter's order: the chosen ones keep this order
// whatever order the flag lists them in.
var ipvsBackendLabels = []string{"local_address", "local_port", "remote_address", "remote_port", "proto", "local_mark"}

// ipvsConfig holds the ipvs collector's flags.
type ipvsConfig struct {
	backendLabels string
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "ipvs",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &ipvsConfig{}
			app.Flag("collector.ipvs.backend-labels", "Comma separated list for IPVS backend stats labels.").
				Default(strings.Join(ipvsBackendLabels, ",")).StringVar(&cfg.backendLabels)
			return func(env collectors.Env) (collectors.Collector, error) { return newIPVSCollector(env, *cfg) }
		},
	})
}

// ipvsCollector serves /proc/net/ip_vs_stats and /proc/net/ip_vs as
// node_exporter does: kube-proxy in IPVS mode programs one virtual server
// per Service port and one real server per endpoint.
type ipvsCollector struct {
	proc     procfs.FS
	procPath string
	labels   []string // the chosen backend labels, in ipvsBackendLabels order

	connections, incomingPackets, outgoingPackets, incomingBytes, outgoingBytes *prometheus.Desc
	backendActive, backendInactive, backendWeight                               *prometheus.Desc
}

func newIPVSCollector(env collectors.Env, cfg ipvsConfig) (*ipvsCollector, error) {
	labels, err := parseIPVSLabels(cfg.backendLabels)
	if err != nil {
		return nil, fmt.Errorf("--collector.ipvs.backend-labels: %w", err)
	}
	return &ipvsCollector{
		proc:            env.Proc,
		procPath:        env.Paths.ProcFS,
		labels:          labels,
		connections:     prometheus.NewDesc("node_ipvs_connections_total", "The total number of connections made.", nil, nil),
		incomingPackets: prometheus.NewDesc("node_ipvs_incoming_packets_total", "The total number of incoming packets.", nil, nil),
		outgoingPackets: prometheus.NewDesc("node_ipvs_outgoing_packets_total", "The total number of outgoing packets.", nil, nil),
		incomingBytes:   prometheus.NewDesc("node_ipvs_incoming_bytes_total", "The total amount of incoming data.", nil, nil),
		outgoingBytes:   prometheus.NewDesc("node_ipvs_outgoing_bytes_total", "The total amount of outgoing data.", nil, nil),
		backendActive: prometheus.NewDesc("node_ipvs_backend_connections_active",
			"The current active connections by local and remote address.", labels, nil),
		backendInactive: prometheus.NewDesc("node_ipvs_backend_connections_inactive",
			"The current inactive connections by local and remote address.", labels, nil),
		backendWeight: prometheus.NewDesc("node_ipvs_backend_weight",
			"The current backend weight by local and remote address.", labels, nil),
	}, nil
}

// parseIPVSLabels accepts a comma-separated subset of ipvsBackendLabels and
// returns it in ipvsBackendLabels order; unknown names are an error.
func parseIPVSLabels(s string) ([]string, error) {
	chosen := map[string]bool{}
	for l := range strings.SplitSeq(s, ",") {
		if l != "" {
			chosen[l] = true
		}
	}
	var out []string
	for _, l := range ipvsBackendLabels {
		if chosen[l] {
			out = append(out, l)
			delete(chosen, l)
		}
	}
	if len(chosen) > 0 {
		unknown := make([]string, 0, len(chosen))
		for l := range chosen {
			unknown = append(unknown, l)
		}
		slices.Sort(unknown)
		return nil, fmt.Errorf("unknown IPVS backend labels %q (known: %s)", strings.Join(unknown, ", "), strings.Join(ipvsBackendLabels, ","))
	}
	return out, nil
}

// ipvsSum accumulates the backends that share one label set: with fewer
// labels than all six, several real servers fold into one series.
type ipvsSum struct {
	values                   []string
	active, inactive, weight uint64
}

func (c *ipvsCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	statsPath := c.procPath + "/net/ip_vs_stats"
	stats, err := c.proc.IPVSStats()
	if errors.Is(err, fs.ErrNotExist) {
		// The ip_vs module is not loaded: kube-proxy runs in iptables or
		// nftables mode, or there is no kube-proxy at all.
		return fmt.Errorf("%w: %s: %w", collectors.ErrNoData, statsPath, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", statsPath, err)
	}
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.CounterValue, float64(stats.Connections))
	ch <- prometheus.MustNewConstMetric(c.incomingPackets, prometheus.CounterValue, float64(stats.IncomingPackets))
	ch <- prometheus.MustNewConstMetric(c.outgoingPackets, prometheus.CounterValue, float64(stats.OutgoingPackets))
	ch <- prometheus.MustNewConstMetric(c.incomingBytes, prometheus.CounterValue, float64(stats.IncomingBytes))
	ch <- prometheus.MustNewConstMetric(c.outgoingBytes, prometheus.CounterValue, float64(stats.OutgoingBytes))

	backends, err := c.proc.IPVSBackendStatus()
	if err != nil {
		return fmt.Errorf("reading %s/net/ip_vs: %w", c.procPath, err)
	}
	var sums []*ipvsSum
	byKey := map[string]*ipvsSum{}
	for _, b := range backends {
		values := make([]string, len(c.labels))
		for i, l := range c.labels {
			values[i] = ipvsLabelValue(b, l)
		}
		key := strings.Join(values, "\x00")
		s, ok := byKey[key]
		if !ok {
			s = &ipvsSum{values: values}
			byKey[key] = s
			sums = append(sums, s)
		}
		s.active += b.ActiveConn
		s.inactive += b.InactConn
		s.weight += b.Weight
	}
	for _, s := range sums {
		ch <- prometheus.MustNewConstMetric(c.backendActive, prometheus.GaugeValue, float64(s.active), s.values...)
		ch <- prometheus.MustNewConstMetric(c.backendInactive, prometheus.GaugeValue, float64(s.inactive), s.values...)
		ch <- prometheus.MustNewConstMetric(c.backendWeight, prometheus.GaugeValue, float64(s.weight), s.values...)
	}
	return nil
}

func ipvsLabelValue(b procfs.IPVSBackendStatus, label string) string {
	switch label {
	case "local_address":
		// Firewall-mark services have no local address; node_exporter
		// serves an empty label rather than net.IP's "<nil>".
		if len(b.LocalAddress) == 0 {
			return ""
		}
		return b.LocalAddress.String()
	case "local_port":
		return strconv.FormatUint(uint64(b.LocalPort), 10)
	case "remote_address":
		return b.RemoteAddress.String()
	case "remote_port":
		return strconv.FormatUint(uint64(b.RemotePort), 10)
	case "proto":
		return b.Proto
	case "local_mark":
		return b.LocalMark
	}
	return ""
}
