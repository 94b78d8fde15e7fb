package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/devicefilter"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

// arpConfig holds the arp collector's flags.
type arpConfig struct {
	deviceInclude, deviceExclude string
	netlink                      bool
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "arp",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &arpConfig{}
			app.Flag("collector.arp.device-include", "Regexp of arp devices to include; when device-exclude is given too, both apply.").
				StringVar(&cfg.deviceInclude)
			app.Flag("collector.arp.device-exclude", "Regexp of arp devices to exclude; when device-include is given too, both apply.").
				StringVar(&cfg.deviceExclude)
			app.Flag("collector.arp.netlink", "Use netlink to gather stats instead of /proc/net/arp. Netlink reads the network namespace nodeagent runs in (the host's with hostNetwork) whatever --path.procfs says.").
				Default("true").BoolVar(&cfg.netlink)
			return func(env collectors.Env) (collectors.Collector, error) { return newARPCollector(env, *cfg) }
		},
	})
}

// arpCounter counts the IPv4 neighbour (ARP) entries per interface name,
// leaving out NOARP entries (loopback, point-to-point links) as
// /proc/net/arp does.
type arpCounter interface {
	countByDevice() (map[string]uint32, error)
}

// arpCollector serves node_arp_entries as node_exporter does, from a netlink
// neighbour dump (node_exporter's default) or /proc/net/arp.
type arpCollector struct {
	source  arpCounter
	filter  devicefilter.Filter
	entries *collectors.CompactDesc
}

func newARPCollector(env collectors.Env, cfg arpConfig) (*arpCollector, error) {
	filter, err := devicefilter.New("collector.arp.device-exclude", cfg.deviceExclude, "collector.arp.device-include", cfg.deviceInclude)
	if err != nil {
		return nil, err
	}
	var source arpCounter = procARP{proc: env.Proc, path: env.Paths.ProcFS + "/net/arp"}
	if cfg.netlink {
		source = netlinkARP{dump: dumpNeighbours, names: interfaceNames}
	}
	return &arpCollector{
		source:  source,
		filter:  filter,
		entries: newARPEntriesDesc(),
	}, nil
}

func newARPEntriesDesc() *collectors.CompactDesc {
	return collectors.NewCompactDesc("node_arp_entries", "ARP entries by device", dto.MetricType_GAUGE, "device")
}

func (c *arpCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

func (c *arpCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	counts, err := c.source.countByDevice()
	if err != nil {
		return nil, err
	}
	var b collectors.CompactBuilder
	for device, n := range counts {
		if c.filter.Ignored(device) {
			continue
		}
		b.AddValues(c.entries, float64(n), device)
	}
	return b.Families(), nil
}

// procARP counts the entries of /proc/net/arp.
type procARP struct {
	proc procfs.FS
	path string
}

func (p procARP) countByDevice() (map[string]uint32, error) {
	entries, err := p.proc.GatherARPEntries()
	if errors.Is(err, fs.ErrNotExist) {
		// A kernel without IPv4.
		return nil, fmt.Errorf("%w: %s: %w", collectors.ErrNoData, p.path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p.path, err)
	}
	counts := map[string]uint32{}
	for _, e := range entries {
		counts[e.Device]++
	}
	return counts, nil
}

// netlinkARP counts the entries of an RTM_GETNEIGH dump. Unlike
// /proc/net/arp it costs no text formatting in the kernel, which matters on
// nodes with thousands of pods.
type netlinkARP struct {
	dump func() ([]byte, error)
	// names returns the names of the interfaces with these indexes; an
	// interface that went away since the dump is left out.
	names func(ifindexes []int) (map[int]string, error)
}

func (n netlinkARP) countByDevice() (map[string]uint32, error) {
	b, err := n.dump()
	if err != nil {
		return nil, fmt.Errorf("netlink RTM_GETNEIGH dump: %w", err)
	}
	neighbours, err := parseNeighbourDump(b)
	if err != nil {
		return nil, fmt.Errorf("netlink RTM_GETNEIGH dump: %w", err)
	}
	byIndex := map[int]uint32{}
	for _, nb := range neighbours {
		byIndex[nb.ifindex]++
	}
	counts := make(map[string]uint32, len(byIndex))
	if len(byIndex) == 0 {
		return counts, nil
	}
	names, err := n.names(slices.Collect(maps.Keys(byIndex)))
	if err != nil {
		return nil, fmt.Errorf("naming network interfaces: %w", err)
	}
	for i, c := range byIndex {
		if name, ok := names[i]; ok {
			counts[name] += c
		}
	}
	return counts, nil
}

func dumpNeighbours() ([]byte, error) {
	return syscall.NetlinkRIB(syscall.RTM_GETNEIGH, syscall.AF_INET)
}

// interfaceNames names the interfaces with SIOCGIFNAME, one ioctl(2) each,
// as if_indextoname(3) does. net.Interfaces would dump every interface of
// the namespace with its statistics (RTM_GETLINK): three quarters of this
// collector's cost on a host of four interfaces, and more with every pod's
// veth, where the neighbour table names a few of them.
func interfaceNames(ifindexes []int) (map[int]string, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket for SIOCGIFNAME: %w", err)
	}
	defer unix.Close(fd)
	names := make(map[int]string, len(ifindexes))
	for _, i := range ifindexes {
		ifr, err := unix.NewIfreq("")
		if err != nil {
			return nil, err
		}
		ifr.SetUint32(uint32(i))
		switch err := unix.IoctlIfreq(fd, unix.SIOCGIFNAME, ifr); {
		case errors.Is(err, unix.ENODEV):
			// The interface went away since the dump.
		case err != nil:
			return nil, fmt.Errorf("SIOCGIFNAME of interface %d: %w", i, err)
		default:
			names[i] = ifr.Name()
		}
	}
	return names, nil
}

// neighbour is one IPv4 neighbour entry of a netlink dump.
type neighbour struct {
	ifindex int
	state   uint16
}

const (
	// sizeofNdmsg is struct ndmsg of include/uapi/linux/neighbour.h:
	// family u8, two pad bytes (u8, u16), ifindex s32, state u16, flags u8,
	// type u8.
	sizeofNdmsg = 12
	// nudNoARP is NUD_NOARP: entries that need no resolution (loopback,
	// point-to-point). /proc/net/arp leaves them out, and so do we.
	nudNoARP = 0x40
)

// parseNeighbourDump decodes the RTM_NEWNEIGH messages of an RTM_GETNEIGH
// dump and returns the IPv4 entries that are not NOARP.
//
// Sample (one message, 60 bytes on x86-64): a 16-byte nlmsghdr
// {len=60, type=RTM_NEWNEIGH}, the 12-byte ndmsg {family=AF_INET,
// ifindex=4, state=NUD_REACHABLE}, then NDA_DST and NDA_LLADDR attributes.
func parseNeighbourDump(b []byte) ([]neighbour, error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil, fmt.Errorf("malformed netlink message: %w", err)
	}
	var out []neighbour
	for _, m := range msgs {
		switch m.Header.Type {
		case syscall.NLMSG_DONE:
			return out, nil
		case syscall.NLMSG_ERROR:
			if len(m.Data) < 4 {
				return nil, errors.New("truncated netlink error message")
			}
			errno := -int32(binary.NativeEndian.Uint32(m.Data[:4]))
			if errno == 0 {
				continue // an acknowledgement
			}
			return nil, syscall.Errno(errno)
		case syscall.RTM_NEWNEIGH:
			if len(m.Data) < sizeofNdmsg {
				return nil, fmt.Errorf("truncated neighbour message of %d bytes", len(m.Data))
			}
			nb := neighbour{
				ifindex: int(int32(binary.NativeEndian.Uint32(m.Data[4:8]))),
				state:   binary.NativeEndian.Uint16(m.Data[8:10]),
			}
			if m.Data[0] != syscall.AF_INET || nb.state&nudNoARP != 0 {
				continue
			}
			out = append(out, nb)
		}
	}
	return out, nil
}
