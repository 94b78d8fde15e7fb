package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/nfs"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "nfs",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newNFSCollector(env) }
		},
	})
}

// nfsCollector serves the NFS client's RPC statistics from
// /proc/net/rpc/nfs, as node_exporter does. The file exists once the nfs
// module is loaded, which is the case on nodes with NFS-backed volumes.
type nfsCollector struct {
	fs   nfs.FS
	path string

	packets, connections, rpcs, retransmissions, authRefreshes, requests *prometheus.Desc
}

func newNFSCollector(env collectors.Env) (*nfsCollector, error) {
	fs, err := nfs.NewFS(env.Paths.ProcFS)
	if err != nil {
		return nil, fmt.Errorf("--path.procfs %s: %w", env.Paths.ProcFS, err)
	}
	return &nfsCollector{
		fs:   fs,
		path: env.Paths.ProcFS + "/net/rpc/nfs",
		packets: prometheus.NewDesc("node_nfs_packets_total",
			"Total NFSd network packets (sent+received) by protocol type.", []string{"protocol"}, nil),
		connections: prometheus.NewDesc("node_nfs_connections_total",
			"Total number of NFSd TCP connections.", nil, nil),
		rpcs: prometheus.NewDesc("node_nfs_rpcs_total",
			"Total number of RPCs performed.", nil, nil),
		retransmissions: prometheus.NewDesc("node_nfs_rpc_retransmissions_total",
			"Number of RPC transmissions performed.", nil, nil),
		authRefreshes: prometheus.NewDesc("node_nfs_rpc_authentication_refreshes_total",
			"Number of RPC authentication refreshes performed.", nil, nil),
		requests: prometheus.NewDesc("node_nfs_requests_total",
			"Number of NFS procedures invoked.", []string{"proto", "method"}, nil),
	}, nil
}

func (c *nfsCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	stats, err := c.fs.ClientRPCStats()
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s: %w", collectors.ErrNoData, c.path, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.path, err)
	}
	ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(stats.Network.UDPCount), "udp")
	ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(stats.Network.TCPCount), "tcp")
	ch <- prometheus.MustNewConstMetric(c.connections, prometheus.CounterValue, float64(stats.Network.TCPConnect))
	ch <- prometheus.MustNewConstMetric(c.rpcs, prometheus.CounterValue, float64(stats.ClientRPC.RPCCount))
	ch <- prometheus.MustNewConstMetric(c.retransmissions, prometheus.CounterValue, float64(stats.ClientRPC.Retransmissions))
	ch <- prometheus.MustNewConstMetric(c.authRefreshes, prometheus.CounterValue, float64(stats.ClientRPC.AuthRefreshes))
	c.sendProcedures(ch, "2", &stats.V2Stats)
	c.sendProcedures(ch, "3", &stats.V3Stats)
	c.sendProcedures(ch, "4", &stats.ClientV4Stats)
	return nil
}

// sendProcedures serves one series per procedure counter of a procfs
// per-version struct. node_exporter defines the method label as the procfs
// field name (Null, GetAttr, ..., Clone for NFSv4), every field included, so
// walking the struct keeps the two identical field for field.
func (c *nfsCollector) sendProcedures(ch chan<- prometheus.Metric, proto string, stats any) {
	v := reflect.ValueOf(stats).Elem()
	for i := range v.NumField() {
		ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue,
			float64(v.Field(i).Uint()), proto, v.Type().Field(i).Name)
	}
}
