package network

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/devicefilter"
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
	entries *prometheus.Desc
}

func newARPCollector(env collectors.Env, cfg arpConfig) (*arpCollector, error) {
	filter, err := devicefilter.New("collector.arp.device-exclude", cfg.deviceExclude, "collector.arp.device-include", cfg.deviceInclude)
	if err != nil {
		return nil, err
	}
	var source arpCounter = procARP{proc: env.Proc, path: env.Paths.ProcFS + "/net/arp"}
	if cfg.netlink {
		source = netlinkARP{dump: dumpNeighbours, interfaces: interfaceNames}
	}
	return &arpCollector{
		source:  source,
		filter:  filter,
		entries: prometheus.NewDesc("node_arp_entries", "ARP entries by device", []string{"device"}, nil),
	}, nil
}

func (c *arpCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	counts, err := c.source.countByDevice()
	if err != nil {
		return err
	}
	for device, n := range counts {
		if c.filter.Ignored(device) {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.entries, prometheus.GaugeValue, float64(n), device)
	}
	return nil
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
	dump       func() ([]byte, error)
	interfaces func() (map[int]string, error)
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
	names, err := n.interfaces()
	if err != nil {
		return nil, fmt.Errorf("listing network interfaces: %w", err)
	}
	counts := map[string]uint32{}
	for _, nb := range neighbours {
		name, ok := names[nb.ifindex]
		if !ok {
			// The interface went away between the two dumps.
			continue
		}
		counts[name]++
	}
	return counts, nil
}

func dumpNeighbours() ([]byte, error) {
	return syscall.NetlinkRIB(syscall.RTM_GETNEIGH, syscall.AF_INET)
}

func interfaceNames() (map[int]string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	names := make(map[int]string, len(ifs))
	for _, i := range ifs {
		names[i.Index] = i.Name
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
