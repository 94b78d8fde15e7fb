package node

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "uname",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(collectors.Env) (collectors.Collector, error) { return newUnameCollector(readUname), nil }
		},
	})
}

// unameInfo is what uname(2) reports.
type unameInfo struct {
	SysName, Release, Version, Machine, NodeName, DomainName string
}

// readUname calls uname(2). The kernel answers for the agent's UTS
// namespace: in a pod, nodename is the pod's hostname unless the pod shares
// the host's (hostNetwork), as with node_exporter.
func readUname() (unameInfo, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return unameInfo{}, fmt.Errorf("uname: %w", err)
	}
	return unameInfo{
		SysName:    unix.ByteSliceToString(u.Sysname[:]),
		Release:    unix.ByteSliceToString(u.Release[:]),
		Version:    unix.ByteSliceToString(u.Version[:]),
		Machine:    unix.ByteSliceToString(u.Machine[:]),
		NodeName:   unix.ByteSliceToString(u.Nodename[:]),
		DomainName: unix.ByteSliceToString(u.Domainname[:]),
	}, nil
}

// unameCollector serves node_uname_info.
type unameCollector struct {
	// uname is the system call; tests replace it.
	uname func() (unameInfo, error)
	info  *prometheus.Desc
}

func newUnameCollector(uname func() (unameInfo, error)) *unameCollector {
	return &unameCollector{
		uname: uname,
		info: prometheus.NewDesc("node_uname_info",
			"Labeled system information as provided by the uname system call.",
			[]string{"sysname", "release", "version", "machine", "nodename", "domainname"}, nil),
	}
}

func (c *unameCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	u, err := c.uname()
	if err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(c.info, prometheus.GaugeValue, 1,
		hostfile.ValidLabel(u.SysName), hostfile.ValidLabel(u.Release), hostfile.ValidLabel(u.Version),
		hostfile.ValidLabel(u.Machine), hostfile.ValidLabel(u.NodeName), hostfile.ValidLabel(u.DomainName))
	return nil
}
