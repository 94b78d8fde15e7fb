package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "netclass",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &netclassConfig{}
			app.Flag("collector.netclass.ignored-devices", "Regexp of network devices the netclass collector skips; the default skips the per-pod interfaces of common CNI plugins.").
				Default(defaultNetDeviceExclude).StringVar(&cfg.ignoredDevices)
			app.Flag("collector.netclass.ignore-invalid-speed", "Leave out node_network_speed_bytes for devices that report an unknown speed (-1), instead of serving -125000.").
				BoolVar(&cfg.ignoreInvalidSpeed)
			app.Flag("collector.netclass.netlink", "Use netlink to gather stats instead of /sys/class/net. Not supported by nodeagent, which reads sysfs (node_exporter's default); setting it is a startup error.").
				Default("false").BoolVar(&cfg.netlink)
			return func(env collectors.Env) (collectors.Collector, error) { return newNetclassCollector(env, *cfg) }
		},
	})
}

type netclassConfig struct {
	ignoredDevices     string
	ignoreInvalidSpeed bool
	netlink            bool
}

// netclassAttr is one numeric attribute of /sys/class/net/<iface>.
type netclassAttr struct {
	name, help string
	typ        dto.MetricType
	value      func(*sysfs.NetClassIface) *int64
}

// netclassCollector serves /sys/class/net as node_exporter's netclass
// collector does in its default (sysfs) mode.
type netclassCollector struct {
	sys    sysfs.FS
	netDir string // <sysfs>/class/net
	// On sysfs, each device's attributes are kept open between scrapes
	// and re-read with pread (hostfile.AttrDir); elsewhere (fixture
	// trees) they are read by path through procfs.
	onSysfs bool
	mu      sync.Mutex
	kept    *hostfile.AttrDirs
	maxKept int // maxKeptNetDevices; tests lower it
	logger  *slog.Logger
	ignored *regexp.Regexp
	cfg     netclassConfig
	attrs   []netclassAttr
	// labels are the devices' label sets ({device=...}) of the last
	// scrape, so that each is built once while the device exists.
	labels map[string]*exposition.LabelSet
}

func newNetclassCollector(env collectors.Env, cfg netclassConfig) (*netclassCollector, error) {
	if cfg.netlink {
		return nil, errors.New("--collector.netclass.netlink is not supported: nodeagent reads /sys/class/net, node_exporter's default mode")
	}
	ignored, err := regexp.Compile(cfg.ignoredDevices)
	if err != nil {
		return nil, fmt.Errorf("--collector.netclass.ignored-devices: %w", err)
	}
	// node_exporter's help for these is "Network device property: <name>".
	attr := func(name string, typ dto.MetricType, value func(*sysfs.NetClassIface) *int64) netclassAttr {
		help := "Network device property: " + strings.TrimPrefix(name, "node_network_")
		return netclassAttr{name: name, help: help, typ: typ, value: value}
	}
	gauge, counter := dto.MetricType_GAUGE, dto.MetricType_COUNTER
	return &netclassCollector{
		sys:     env.Sys,
		netDir:  filepath.Join(env.Paths.SysFS, "class", "net"),
		onSysfs: hostfile.IsSysfs(filepath.Join(env.Paths.SysFS, "class", "net")),
		kept:    hostfile.NewAttrDirs(netclassFiles),
		maxKept: maxKeptNetDevices,
		logger:  env.Logger,
		ignored: ignored,
		cfg:     cfg,
		attrs: []netclassAttr{
			attr("node_network_address_assign_type", gauge, func(i *sysfs.NetClassIface) *int64 { return i.AddrAssignType }),
			attr("node_network_carrier", gauge, func(i *sysfs.NetClassIface) *int64 { return i.Carrier }),
			attr("node_network_carrier_changes_total", counter, func(i *sysfs.NetClassIface) *int64 { return i.CarrierChanges }),
			attr("node_network_carrier_up_changes_total", counter, func(i *sysfs.NetClassIface) *int64 { return i.CarrierUpCount }),
			attr("node_network_carrier_down_changes_total", counter, func(i *sysfs.NetClassIface) *int64 { return i.CarrierDownCount }),
			attr("node_network_device_id", gauge, func(i *sysfs.NetClassIface) *int64 { return i.DevID }),
			attr("node_network_dormant", gauge, func(i *sysfs.NetClassIface) *int64 { return i.Dormant }),
			attr("node_network_flags", gauge, func(i *sysfs.NetClassIface) *int64 { return i.Flags }),
			attr("node_network_iface_id", gauge, func(i *sysfs.NetClassIface) *int64 { return i.IfIndex }),
			attr("node_network_iface_link", gauge, func(i *sysfs.NetClassIface) *int64 { return i.IfLink }),
			attr("node_network_iface_link_mode", gauge, func(i *sysfs.NetClassIface) *int64 { return i.LinkMode }),
			attr("node_network_mtu_bytes", gauge, func(i *sysfs.NetClassIface) *int64 { return i.MTU }),
			attr("node_network_name_assign_type", gauge, func(i *sysfs.NetClassIface) *int64 { return i.NameAssignType }),
			attr("node_network_net_dev_group", gauge, func(i *sysfs.NetClassIface) *int64 { return i.NetDevGroup }),
			attr("node_network_transmit_queue_length", gauge, func(i *sysfs.NetClassIface) *int64 { return i.TxQueueLen }),
			attr("node_network_protocol_type", gauge, func(i *sysfs.NetClassIface) *int64 { return i.Type }),
		},
	}, nil
}

func (c *netclassCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the attributes as compact families: a host's
// second largest collector by series (16 or more per interface), whose
// label sets change only when an interface comes or goes.
func (c *netclassCollector) UpdateCompact(ctx context.Context) ([]*exposition.CompactFamily, error) {
	devices, err := c.sys.NetClassDevices()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			c.logger.Debug("netclass: cannot list network devices", "err", err)
			return nil, fmt.Errorf("%w: %w", collectors.ErrNoData, err)
		}
		return nil, fmt.Errorf("listing network devices: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(devices))
	defer c.closeGone(seen)
	var b collectors.CompactBuilder
	labels := make(map[string]*exposition.LabelSet, len(devices))
	defer func() { c.labels = labels }()
	var errs []error
	for _, dev := range devices {
		if err := ctx.Err(); err != nil {
			return b.Families(), err
		}
		if c.ignored.MatchString(dev) {
			continue
		}
		seen[dev] = true
		read := c.readIface
		if c.onSysfs && (c.kept.Has(dev) || c.kept.Len() < c.maxKept) {
			read = c.readKept
		}
		iface, err := read(dev)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, hostfile.ErrGone) {
			// The device went away between listing and reading (pod churn):
			// node_exporter drops the whole scrape then; we skip the device.
			c.logger.Debug("netclass: device vanished", "device", dev)
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("network device %s: %w", dev, err))
			continue
		}
		c.add(&b, labels, iface)
	}
	return b.Families(), errors.Join(errs...)
}

// netclassFiles are the attributes of /sys/class/net/<iface> that send
// serves. procfs' NetClassByIface reads every regular file of the
// directory, including those nobody serves (dev_port, gro_flush_timeout,
// napi_defer_hard_irqs, proto_down, testing, threaded, uevent, addr_len,
// phys_*: 9 of the 31 files of a virtio device); reading only these saves
// the directory listing and those reads, about a quarter of the system
// calls of this collector, the costliest of the host layer.
var netclassFiles = []string{
	"addr_assign_type", "address", "broadcast", "carrier", "carrier_changes",
	"carrier_down_count", "carrier_up_count", "dev_id", "dormant", "duplex",
	"flags", "ifalias", "ifindex", "iflink", "link_mode", "mtu",
	"name_assign_type", "netdev_group", "operstate", "speed", "tx_queue_len",
	"type",
}

// readIface reads dev's served attributes with procfs' own parser, which
// skips those the device lacks or refuses (as NetClassByIface does). A
// device that went away is reported as fs.ErrNotExist.
func (c *netclassCollector) readIface(dev string) (*sysfs.NetClassIface, error) {
	dir := filepath.Join(c.netDir, dev)
	if _, err := os.Stat(dir); err != nil {
		return nil, err
	}
	iface := &sysfs.NetClassIface{Name: dev}
	for _, attr := range netclassFiles {
		if err := sysfs.ParseNetClassAttribute(dir, attr, iface); err != nil {
			return nil, err
		}
	}
	return iface, nil
}

// maxKeptNetDevices bounds the devices whose descriptors are kept (22
// each): a node with hundreds of interfaces served (the CNI ones are not by
// default) reads the rest by path rather than hold thousands of
// descriptors outside the container layer's --collector.cadvisor.max-open-files.
const maxKeptNetDevices = 64

// readKept reads dev's served attributes through descriptors kept from
// earlier scrapes, opened anew when the device's directory is a new one
// (the device was removed and added again under the same name).
func (c *netclassCollector) readKept(dev string) (*sysfs.NetClassIface, error) {
	d, err := c.kept.Open(dev, filepath.Join(c.netDir, dev))
	if err != nil {
		return nil, err
	}
	iface := &sysfs.NetClassIface{Name: dev}
	for _, attr := range netclassFiles {
		v, ok, err := d.Read(attr)
		if err != nil {
			if errors.Is(err, hostfile.ErrGone) {
				c.kept.Forget(dev)
			}
			return nil, err
		}
		if ok {
			setNetclassAttr(iface, attr, v)
		}
	}
	return iface, nil
}

// closeGone closes the descriptors of devices not listed in this scrape.
func (c *netclassCollector) closeGone(seen map[string]bool) { c.kept.Keep(seen) }

// setNetclassAttr sets attr's field of iface from its value as procfs'
// ParseNetClassAttribute does, whose parser takes a path and so cannot be
// given a value read through a kept descriptor: strings as they are,
// numbers in any base Go's ParseInt infers, 0 for a number that does not
// parse. TestNetclassKeptMatchesProcfsOnHost holds the two to the same
// result.
func setNetclassAttr(iface *sysfs.NetClassIface, attr, v string) {
	num := func() *int64 {
		n, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			n = 0
		}
		return &n
	}
	switch attr {
	case "addr_assign_type":
		iface.AddrAssignType = num()
	case "address":
		iface.Address = v
	case "broadcast":
		iface.Broadcast = v
	case "carrier":
		iface.Carrier = num()
	case "carrier_changes":
		iface.CarrierChanges = num()
	case "carrier_down_count":
		iface.CarrierDownCount = num()
	case "carrier_up_count":
		iface.CarrierUpCount = num()
	case "dev_id":
		iface.DevID = num()
	case "dormant":
		iface.Dormant = num()
	case "duplex":
		iface.Duplex = v
	case "flags":
		iface.Flags = num()
	case "ifalias":
		iface.IfAlias = v
	case "ifindex":
		iface.IfIndex = num()
	case "iflink":
		iface.IfLink = num()
	case "link_mode":
		iface.LinkMode = num()
	case "mtu":
		iface.MTU = num()
	case "name_assign_type":
		iface.NameAssignType = num()
	case "netdev_group":
		iface.NetDevGroup = num()
	case "operstate":
		iface.OperState = v
	case "speed":
		iface.Speed = num()
	case "tx_queue_len":
		iface.TxQueueLen = num()
	case "type":
		iface.Type = num()
	}
}

// add adds one interface's series to b; labels collects the label sets of
// this scrape's devices.
func (c *netclassCollector) add(b *collectors.CompactBuilder, labels map[string]*exposition.LabelSet, iface *sysfs.NetClassIface) {
	up := 0.0
	if iface.OperState == "up" {
		up = 1
	}
	// Label values must be UTF-8; ifalias is whatever an administrator set.
	name := hostfile.ValidLabel(iface.Name)
	ls, ok := c.labels[name]
	if !ok {
		ls = collectors.LabelSet("device", name)
	}
	labels[name] = ls
	gauge := dto.MetricType_GAUGE
	b.Add("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.", gauge, ls, up)
	b.Add("node_network_info", "Non-numeric data from /sys/class/net/<iface>, value is always 1.", gauge,
		collectors.LabelSet("device", name,
			"address", hostfile.ValidLabel(iface.Address), "broadcast", hostfile.ValidLabel(iface.Broadcast),
			"duplex", hostfile.ValidLabel(iface.Duplex), "operstate", hostfile.ValidLabel(iface.OperState),
			"adminstate", adminState(iface.Flags), "ifalias", hostfile.ValidLabel(iface.IfAlias)), 1)
	for _, a := range c.attrs {
		if v := a.value(iface); v != nil {
			b.Add(a.name, a.help, a.typ, ls, float64(*v))
		}
	}
	// The kernel reports Mbit/s, and -1 when the speed is unknown;
	// node_exporter serves the -1 as -125000 bytes unless told to skip it.
	if s := iface.Speed; s != nil && (*s >= 0 || !c.cfg.ignoreInvalidSpeed) {
		b.Add("node_network_speed_bytes", "Network device property: speed_bytes", gauge, ls, float64(*s*1000*1000/8))
	}
}

// adminState reads IFF_UP from the interface flags.
func adminState(flags *int64) string {
	switch {
	case flags == nil:
		return "unknown"
	case *flags&int64(net.FlagUp) != 0:
		return "up"
	default:
		return "down"
	}
}
