package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/jsimonetti/rtnetlink/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/devicefilter"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

// defaultNetDeviceExclude is the Kubernetes default of
// --collector.netdev.device-exclude (netclass uses it too). It drops the
// interfaces CNI plugins make: the per-pod ends of veth pairs (veth*;
// cali* for Calico, lxc* for Cilium), which come and go with every pod and
// would add ~16 series per pod, and the overlay and bridge devices
// (flannel.*, cni0, cilium_*, tunl0 for Calico IPIP), whose traffic is pod
// traffic that the node's physical interfaces count again. node_exporter
// excludes nothing by default; kube-prometheus excludes veth*.
const defaultNetDeviceExclude = `^(veth|cali|cilium|lxc|flannel|cni|tunl)`

// netdevConfig holds the netdev collector's flags.
type netdevConfig struct {
	devices     *devicefilter.Flags
	addressInfo bool
	detailed    bool
	ifAlias     bool
	netlink     bool
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "netdev",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &netdevConfig{}
			cfg.devices = devicefilter.AddFlags(app,
				"collector.netdev.device-exclude", defaultNetDeviceExclude,
				"Regexp of net devices to exclude (mutually exclusive to device-include). The default drops Kubernetes CNI interfaces (veth, Calico, Cilium, Flannel, bridge, IPIP); --collector.netdev.device-exclude='' serves them all, as node_exporter does.",
				"collector.netdev.device-include",
				"Regexp of net devices to include (mutually exclusive to device-exclude).")
			app.Flag("collector.netdev.address-info", "Collect address-info for every device (node_network_address_info).").BoolVar(&cfg.addressInfo)
			app.Flag("collector.netdev.enable-detailed-metrics", "Use (incompatible) metric names that provide more detailed stats on Linux.").BoolVar(&cfg.detailed)
			app.Flag("collector.netdev.label-ifalias", "Add ifAlias label.").Default("false").BoolVar(&cfg.ifAlias)
			app.Flag("collector.netdev.netlink",
				"Use netlink to gather stats instead of /proc/net/dev. Netlink reads the network namespace nodeagent runs in (the host's with hostNetwork) whatever --path.procfs says.").
				Default("true").BoolVar(&cfg.netlink)
			return func(env collectors.Env) (collectors.Collector, error) { return newNetdevCollector(env, *cfg) }
		},
	})
}

// netdevCollector serves the interface counters of the agent's network
// namespace (the node's: the DaemonSet runs with hostNetwork) as
// node_exporter's netdev collector does: from an rtnetlink link dump
// (node_exporter's default), or from <procfs>/net/dev with
// --no-collector.netdev.netlink.
type netdevCollector struct {
	sys       sysfs.FS
	logger    *slog.Logger
	devices   devicefilter.Filter
	ifAlias   bool
	detailed  bool
	stats     func() (map[string]netdevCounters, error)
	help      map[string]string // by statistic, as node_exporter names them
	address   bool              // --collector.netdev.address-info
	addresses func() ([]ifaceAddrs, error)
	// labels are the label sets of the devices of the last scrape, by
	// name (and alias), so that each is built once while it exists.
	labels map[string]*exposition.LabelSet
}

// netdevCounters are one interface's counters by node_exporter's statistic
// names (receive_bytes, transmit_colls, ...), which name the families:
// node_network_<statistic>_total.
type netdevCounters map[string]uint64

// netdevFamilies is every family netdev can serve, by statistic: what
// /proc/net/dev and netlink report (the detailed names), and the legacy
// names node_exporter folds them into without
// --collector.netdev.enable-detailed-metrics. node_exporter's help names
// the statistic, less the _total suffix.
var netdevFamilies = map[string]string{
	"receive_bytes":             "node_network_receive_bytes_total",
	"receive_packets":           "node_network_receive_packets_total",
	"receive_errors":            "node_network_receive_errors_total",
	"receive_dropped":           "node_network_receive_dropped_total",
	"receive_fifo":              "node_network_receive_fifo_total",
	"receive_frame":             "node_network_receive_frame_total",
	"receive_compressed":        "node_network_receive_compressed_total",
	"receive_multicast":         "node_network_receive_multicast_total",
	"receive_nohandler":         "node_network_receive_nohandler_total",
	"receive_length_errors":     "node_network_receive_length_errors_total",
	"receive_over_errors":       "node_network_receive_over_errors_total",
	"receive_crc_errors":        "node_network_receive_crc_errors_total",
	"receive_frame_errors":      "node_network_receive_frame_errors_total",
	"receive_fifo_errors":       "node_network_receive_fifo_errors_total",
	"receive_missed_errors":     "node_network_receive_missed_errors_total",
	"receive_errs":              "node_network_receive_errs_total",
	"receive_drop":              "node_network_receive_drop_total",
	"transmit_bytes":            "node_network_transmit_bytes_total",
	"transmit_packets":          "node_network_transmit_packets_total",
	"transmit_errors":           "node_network_transmit_errors_total",
	"transmit_dropped":          "node_network_transmit_dropped_total",
	"transmit_fifo":             "node_network_transmit_fifo_total",
	"transmit_colls":            "node_network_transmit_colls_total",
	"transmit_carrier":          "node_network_transmit_carrier_total",
	"transmit_compressed":       "node_network_transmit_compressed_total",
	"transmit_aborted_errors":   "node_network_transmit_aborted_errors_total",
	"transmit_carrier_errors":   "node_network_transmit_carrier_errors_total",
	"transmit_fifo_errors":      "node_network_transmit_fifo_errors_total",
	"transmit_heartbeat_errors": "node_network_transmit_heartbeat_errors_total",
	"transmit_window_errors":    "node_network_transmit_window_errors_total",
	"transmit_errs":             "node_network_transmit_errs_total",
	"transmit_drop":             "node_network_transmit_drop_total",
	"multicast":                 "node_network_multicast_total",
	"collisions":                "node_network_collisions_total",
}

// ifaceAddrs is one interface's addresses.
type ifaceAddrs struct {
	name  string
	addrs []net.Addr
}

func newNetdevCollector(env collectors.Env, cfg netdevConfig) (*netdevCollector, error) {
	devices, err := cfg.devices.Build("collector.netdev.device-exclude", "collector.netdev.device-include")
	if err != nil {
		return nil, err
	}
	c := &netdevCollector{
		sys:       env.Sys,
		logger:    env.Logger,
		devices:   devices,
		ifAlias:   cfg.ifAlias,
		detailed:  cfg.detailed,
		help:      map[string]string{},
		address:   cfg.addressInfo,
		addresses: hostAddresses,
	}
	if cfg.netlink {
		links := &rtnlLinks{}
		c.stats = func() (map[string]netdevCounters, error) {
			msgs, err := links.list()
			if err != nil {
				return nil, err
			}
			return netlinkCounters(msgs, env.Logger), nil
		}
	} else {
		proc, path := env.Proc, env.Paths.ProcFS+"/net/dev"
		c.stats = func() (map[string]netdevCounters, error) { return procNetdev(proc, path) }
	}
	for stat := range netdevFamilies {
		c.help[stat] = "Network device statistic " + stat + "."
	}
	return c, nil
}

func (c *netdevCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the counters as compact families: a host's
// largest collector by series (a dozen per interface), whose label sets
// change only when an interface comes or goes.
func (c *netdevCollector) UpdateCompact(_ context.Context) ([]*exposition.CompactFamily, error) {
	devs, err := c.stats()
	if err != nil {
		return nil, err
	}
	var b collectors.CompactBuilder
	labels := make(map[string]*exposition.LabelSet, len(devs))
	for name, counters := range devs {
		if c.devices.Ignored(name) {
			continue
		}
		if !c.detailed {
			foldLegacy(counters)
		}
		key, lv := name, []string{"device", hostfile.ValidLabel(name)}
		if c.ifAlias {
			alias := hostfile.ValidLabel(c.alias(name))
			key, lv = name+"\x00"+alias, append(lv, "ifalias", alias)
		}
		ls, ok := c.labels[key]
		if !ok {
			ls = collectors.LabelSet(lv...)
		}
		labels[key] = ls
		for stat, v := range counters {
			b.Add(netdevFamilies[stat], c.help[stat], dto.MetricType_COUNTER, ls, float64(v))
		}
	}
	c.labels = labels // runs of one collector are serial
	if !c.address {
		return b.Families(), nil
	}
	ifaces, err := c.addresses()
	if err != nil {
		return b.Families(), fmt.Errorf("listing network interfaces: %w", err)
	}
	for _, iface := range ifaces {
		if c.devices.Ignored(iface.name) {
			continue
		}
		for _, a := range iface.addrs {
			ip, ipNet, err := net.ParseCIDR(a.String())
			if err != nil {
				continue
			}
			ones, _ := ipNet.Mask.Size()
			b.Add("node_network_address_info", "node network address by device", dto.MetricType_GAUGE,
				collectors.LabelSet("device", hostfile.ValidLabel(iface.name), "address", ip.String(),
					"netmask", strconv.Itoa(ones), "scope", addressScope(ip)), 1)
		}
	}
	return b.Families(), nil
}

// procNetdev reads <procfs>/net/dev: the reading process's network
// namespace, as node_exporter's --no-collector.netdev.netlink does.
func procNetdev(proc procfs.FS, path string) (map[string]netdevCounters, error) {
	devs, err := hostfile.GuardParse("the file", proc.NetDev)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	out := make(map[string]netdevCounters, len(devs))
	for name, l := range devs {
		out[name] = netdevCounters{
			"receive_bytes":       l.RxBytes,
			"receive_packets":     l.RxPackets,
			"receive_errors":      l.RxErrors,
			"receive_dropped":     l.RxDropped,
			"receive_fifo":        l.RxFIFO,
			"receive_frame":       l.RxFrame,
			"receive_compressed":  l.RxCompressed,
			"receive_multicast":   l.RxMulticast,
			"transmit_bytes":      l.TxBytes,
			"transmit_packets":    l.TxPackets,
			"transmit_errors":     l.TxErrors,
			"transmit_dropped":    l.TxDropped,
			"transmit_fifo":       l.TxFIFO,
			"transmit_colls":      l.TxCollisions,
			"transmit_carrier":    l.TxCarrier,
			"transmit_compressed": l.TxCompressed,
		}
	}
	return out, nil
}

// rtnlLinks dumps every link of the agent's network namespace over
// rtnetlink (RTM_GETLINK), whose IFLA_STATS64 counters (the 32-bit
// IFLA_STATS when a kernel gives only those) are the kernel's full
// rtnl_link_stats64, whose detailed error counters /proc/net/dev only
// shows summed, and receive_nohandler, which it does not show at all.
//
// The socket is kept between scrapes: opening and closing it (socket,
// bind, getsockname, the runtime poller's registration, close) was a
// quarter of the dump's cost. After any failure it is closed, and the
// next dump opens another, so that a reply left unread cannot be taken
// for the next one's.
type rtnlLinks struct {
	mu   sync.Mutex
	conn *rtnetlink.Conn
}

func (r *rtnlLinks) list() ([]rtnetlink.LinkMessage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.conn == nil {
		conn, err := rtnetlink.Dial(nil)
		if err != nil {
			return nil, fmt.Errorf("opening an rtnetlink socket: %w", err)
		}
		r.conn = conn
	}
	links, err := r.conn.Link.List()
	if err != nil {
		_ = r.conn.Close()
		r.conn = nil
		return nil, fmt.Errorf("listing links over rtnetlink: %w", err)
	}
	return links, nil
}

// netlinkCounters turns a link dump into counters by interface name.
func netlinkCounters(links []rtnetlink.LinkMessage, logger *slog.Logger) map[string]netdevCounters {
	out := make(map[string]netdevCounters, len(links))
	for _, msg := range links {
		a := msg.Attributes
		if a == nil {
			logger.Debug("link without attributes in the rtnetlink dump", "index", msg.Index)
			continue
		}
		s := a.Stats64
		if s32 := a.Stats; s == nil && s32 != nil {
			s = &rtnetlink.LinkStats64{
				RXPackets: uint64(s32.RXPackets), TXPackets: uint64(s32.TXPackets),
				RXBytes: uint64(s32.RXBytes), TXBytes: uint64(s32.TXBytes),
				RXErrors: uint64(s32.RXErrors), TXErrors: uint64(s32.TXErrors),
				RXDropped: uint64(s32.RXDropped), TXDropped: uint64(s32.TXDropped),
				Multicast: uint64(s32.Multicast), Collisions: uint64(s32.Collisions),
				RXLengthErrors: uint64(s32.RXLengthErrors), RXOverErrors: uint64(s32.RXOverErrors),
				RXCRCErrors: uint64(s32.RXCRCErrors), RXFrameErrors: uint64(s32.RXFrameErrors),
				RXFIFOErrors: uint64(s32.RXFIFOErrors), RXMissedErrors: uint64(s32.RXMissedErrors),
				TXAbortedErrors: uint64(s32.TXAbortedErrors), TXCarrierErrors: uint64(s32.TXCarrierErrors),
				TXFIFOErrors: uint64(s32.TXFIFOErrors), TXHeartbeatErrors: uint64(s32.TXHeartbeatErrors),
				TXWindowErrors: uint64(s32.TXWindowErrors),
				RXCompressed:   uint64(s32.RXCompressed), TXCompressed: uint64(s32.TXCompressed),
				RXNoHandler: uint64(s32.RXNoHandler),
			}
		}
		if s == nil {
			logger.Debug("link without statistics in the rtnetlink dump", "device", a.Name)
			continue
		}
		out[a.Name] = netdevCounters{
			"receive_packets":           s.RXPackets,
			"transmit_packets":          s.TXPackets,
			"receive_bytes":             s.RXBytes,
			"transmit_bytes":            s.TXBytes,
			"receive_errors":            s.RXErrors,
			"transmit_errors":           s.TXErrors,
			"receive_dropped":           s.RXDropped,
			"transmit_dropped":          s.TXDropped,
			"multicast":                 s.Multicast,
			"collisions":                s.Collisions,
			"receive_length_errors":     s.RXLengthErrors,
			"receive_over_errors":       s.RXOverErrors,
			"receive_crc_errors":        s.RXCRCErrors,
			"receive_frame_errors":      s.RXFrameErrors,
			"receive_fifo_errors":       s.RXFIFOErrors,
			"receive_missed_errors":     s.RXMissedErrors,
			"transmit_aborted_errors":   s.TXAbortedErrors,
			"transmit_carrier_errors":   s.TXCarrierErrors,
			"transmit_fifo_errors":      s.TXFIFOErrors,
			"transmit_heartbeat_errors": s.TXHeartbeatErrors,
			"transmit_window_errors":    s.TXWindowErrors,
			"receive_compressed":        s.RXCompressed,
			"transmit_compressed":       s.TXCompressed,
			"receive_nohandler":         s.RXNoHandler,
		}
	}
	return out
}

// foldLegacy renames counters to node_exporter's legacy names, which
// dashboards use, summing the detailed error counters into the columns
// /proc/net/dev shows them in (the kernel's dev_seq_printf_stats):
// drop = dropped + missed, frame = frame + length + over + crc errors,
// carrier = carrier + aborted + heartbeat + window errors. /proc/net/dev's
// counters are already summed and only change name.
func foldLegacy(m netdevCounters) {
	take := func(k string) (uint64, bool) {
		v, ok := m[k]
		delete(m, k)
		return v, ok
	}
	sum := func(keys ...string) uint64 {
		var s uint64
		for _, k := range keys {
			v, _ := take(k)
			s += v
		}
		return s
	}
	rename := func(from, to string, extra ...string) {
		if v, ok := take(from); ok {
			m[to] = v + sum(extra...)
		}
	}
	rename("receive_errors", "receive_errs")
	rename("receive_dropped", "receive_drop", "receive_missed_errors")
	rename("receive_fifo_errors", "receive_fifo")
	rename("receive_frame_errors", "receive_frame", "receive_length_errors", "receive_over_errors", "receive_crc_errors")
	rename("multicast", "receive_multicast")
	rename("transmit_errors", "transmit_errs")
	rename("transmit_dropped", "transmit_drop")
	rename("transmit_fifo_errors", "transmit_fifo")
	rename("collisions", "transmit_colls")
	rename("transmit_carrier_errors", "transmit_carrier", "transmit_aborted_errors", "transmit_heartbeat_errors", "transmit_window_errors")
}

// alias is the interface's ifalias from sysfs, "" when it has none.
func (c *netdevCollector) alias(name string) string {
	iface, err := c.sys.NetClassByIface(name)
	if err != nil {
		c.logger.Debug("no sysfs net class entry for interface", "device", name, "err", err)
		return ""
	}
	return iface.IfAlias
}

// addressScope is node_exporter's scope label of an address.
func addressScope(ip net.IP) string {
	switch {
	case ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast():
		return "link-local"
	case ip.IsInterfaceLocalMulticast():
		return "interface-local"
	case ip.IsGlobalUnicast():
		return "global"
	}
	return ""
}

// hostAddresses lists the addresses of the agent's network namespace (the
// node's, with hostNetwork), as node_exporter does.
func hostAddresses() ([]ifaceAddrs, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	out := make([]ifaceAddrs, 0, len(ifaces))
	for _, i := range ifaces {
		addrs, _ := i.Addrs()
		out = append(out, ifaceAddrs{name: i.Name, addrs: addrs})
	}
	return out, nil
}
