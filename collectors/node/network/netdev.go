package network

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/devicefilter"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
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
				"Accepted for node_exporter compatibility. nodeagent always reads <procfs>/net/dev, which has the same counters as netlink except receive_nohandler; --no-collector.netdev.netlink is what it does.").
				Default("false").BoolVar(&cfg.netlink)
			return func(env collectors.Env) (collectors.Collector, error) { return newNetdevCollector(env, *cfg) }
		},
	})
}

// netdevCollector serves <procfs>/net/dev as node_exporter's netdev
// collector does with --no-collector.netdev.netlink. /proc/net/dev is the
// reading process's network namespace: the DaemonSet runs with
// hostNetwork so that it is the node's.
type netdevCollector struct {
	proc      procfs.FS
	sys       sysfs.FS
	procPath  string
	logger    *slog.Logger
	devices   devicefilter.Filter
	ifAlias   bool
	stats     []netdevStat
	address   *prometheus.Desc // nil unless --collector.netdev.address-info
	addresses func() ([]ifaceAddrs, error)
}

type netdevStat struct {
	desc  *prometheus.Desc
	value func(*procfs.NetDevLine) uint64
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
	if cfg.netlink {
		env.Logger.Warn("--collector.netdev.netlink is not supported; reading /proc/net/dev (node_network_receive_nohandler_total is not served)")
	}
	c := &netdevCollector{
		proc:      env.Proc,
		sys:       env.Sys,
		procPath:  env.Paths.ProcFS,
		logger:    env.Logger,
		devices:   devices,
		ifAlias:   cfg.ifAlias,
		addresses: hostAddresses,
	}
	labels := []string{"device"}
	if cfg.ifAlias {
		labels = append(labels, "ifalias")
	}
	// node_exporter's help names the statistic, less the _total suffix.
	stat := func(name, key string, value func(*procfs.NetDevLine) uint64) {
		c.stats = append(c.stats, netdevStat{
			prometheus.NewDesc(name, "Network device statistic "+key+".", labels, nil), value})
	}
	stat("node_network_receive_bytes_total", "receive_bytes", func(l *procfs.NetDevLine) uint64 { return l.RxBytes })
	stat("node_network_receive_packets_total", "receive_packets", func(l *procfs.NetDevLine) uint64 { return l.RxPackets })
	stat("node_network_receive_fifo_total", "receive_fifo", func(l *procfs.NetDevLine) uint64 { return l.RxFIFO })
	stat("node_network_receive_frame_total", "receive_frame", func(l *procfs.NetDevLine) uint64 { return l.RxFrame })
	stat("node_network_receive_compressed_total", "receive_compressed", func(l *procfs.NetDevLine) uint64 { return l.RxCompressed })
	stat("node_network_receive_multicast_total", "receive_multicast", func(l *procfs.NetDevLine) uint64 { return l.RxMulticast })
	stat("node_network_transmit_bytes_total", "transmit_bytes", func(l *procfs.NetDevLine) uint64 { return l.TxBytes })
	stat("node_network_transmit_packets_total", "transmit_packets", func(l *procfs.NetDevLine) uint64 { return l.TxPackets })
	stat("node_network_transmit_fifo_total", "transmit_fifo", func(l *procfs.NetDevLine) uint64 { return l.TxFIFO })
	stat("node_network_transmit_colls_total", "transmit_colls", func(l *procfs.NetDevLine) uint64 { return l.TxCollisions })
	stat("node_network_transmit_carrier_total", "transmit_carrier", func(l *procfs.NetDevLine) uint64 { return l.TxCarrier })
	stat("node_network_transmit_compressed_total", "transmit_compressed", func(l *procfs.NetDevLine) uint64 { return l.TxCompressed })
	if cfg.detailed {
		stat("node_network_receive_errors_total", "receive_errors", func(l *procfs.NetDevLine) uint64 { return l.RxErrors })
		stat("node_network_receive_dropped_total", "receive_dropped", func(l *procfs.NetDevLine) uint64 { return l.RxDropped })
		stat("node_network_transmit_errors_total", "transmit_errors", func(l *procfs.NetDevLine) uint64 { return l.TxErrors })
		stat("node_network_transmit_dropped_total", "transmit_dropped", func(l *procfs.NetDevLine) uint64 { return l.TxDropped })
	} else {
		// node_exporter's legacy names, which dashboards use.
		stat("node_network_receive_errs_total", "receive_errs", func(l *procfs.NetDevLine) uint64 { return l.RxErrors })
		stat("node_network_receive_drop_total", "receive_drop", func(l *procfs.NetDevLine) uint64 { return l.RxDropped })
		stat("node_network_transmit_errs_total", "transmit_errs", func(l *procfs.NetDevLine) uint64 { return l.TxErrors })
		stat("node_network_transmit_drop_total", "transmit_drop", func(l *procfs.NetDevLine) uint64 { return l.TxDropped })
	}
	if cfg.addressInfo {
		c.address = prometheus.NewDesc("node_network_address_info", "node network address by device",
			[]string{"device", "address", "netmask", "scope"}, nil)
	}
	return c, nil
}

func (c *netdevCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	devs, err := hostfile.GuardParse("the file", c.proc.NetDev)
	if err != nil {
		return fmt.Errorf("reading %s/net/dev: %w", c.procPath, err)
	}
	for name, line := range devs {
		if c.devices.Ignored(name) {
			continue
		}
		lv := []string{hostfile.ValidLabel(name)}
		if c.ifAlias {
			lv = append(lv, hostfile.ValidLabel(c.alias(name)))
		}
		for _, s := range c.stats {
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(s.value(&line)), lv...)
		}
	}
	if c.address == nil {
		return nil
	}
	ifaces, err := c.addresses()
	if err != nil {
		return fmt.Errorf("listing network interfaces: %w", err)
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
			ch <- prometheus.MustNewConstMetric(c.address, prometheus.GaugeValue, 1,
				hostfile.ValidLabel(iface.name), ip.String(), strconv.Itoa(ones), addressScope(ip))
		}
	}
	return nil
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
