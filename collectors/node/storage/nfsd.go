package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/nfs"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "nfsd",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newNFSdCollector(env) }
		},
	})
}

// nfsdCollector serves the kernel NFS server's statistics from
// /proc/net/rpc/nfsd, as node_exporter does.
type nfsdCollector struct {
	fs   nfs.FS
	path string

	replyCacheHits, replyCacheMisses, replyCacheNoCache *prometheus.Desc
	fileHandlesStale                                    *prometheus.Desc
	diskBytesRead, diskBytesWritten                     *prometheus.Desc
	serverThreads                                       *prometheus.Desc
	readAheadCacheSize, readAheadCacheNotFound          *prometheus.Desc
	packets, connections                                *prometheus.Desc
	rpcErrors, serverRPCs                               *prometheus.Desc
	requests                                            *prometheus.Desc
}

func newNFSdCollector(env collectors.Env) (*nfsdCollector, error) {
	fs, err := nfs.NewFS(env.Paths.ProcFS)
	if err != nil {
		return nil, fmt.Errorf("--path.procfs %s: %w", env.Paths.ProcFS, err)
	}
	return &nfsdCollector{
		fs:   fs,
		path: env.Paths.ProcFS + "/net/rpc/nfsd",
		replyCacheHits: prometheus.NewDesc("node_nfsd_reply_cache_hits_total",
			"Total number of NFSd Reply Cache hits (client lost server response).", nil, nil),
		replyCacheMisses: prometheus.NewDesc("node_nfsd_reply_cache_misses_total",
			"Total number of NFSd Reply Cache an operation that requires caching (idempotent).", nil, nil),
		replyCacheNoCache: prometheus.NewDesc("node_nfsd_reply_cache_nocache_total",
			"Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).", nil, nil),
		fileHandlesStale: prometheus.NewDesc("node_nfsd_file_handles_stale_total",
			"Total number of NFSd stale file handles", nil, nil),
		diskBytesRead: prometheus.NewDesc("node_nfsd_disk_bytes_read_total",
			"Total NFSd bytes read.", nil, nil),
		diskBytesWritten: prometheus.NewDesc("node_nfsd_disk_bytes_written_total",
			"Total NFSd bytes written.", nil, nil),
		serverThreads: prometheus.NewDesc("node_nfsd_server_threads",
			"Total number of NFSd kernel threads that are running.", nil, nil),
		readAheadCacheSize: prometheus.NewDesc("node_nfsd_read_ahead_cache_size_blocks",
			"How large the read ahead cache is in blocks.", nil, nil),
		readAheadCacheNotFound: prometheus.NewDesc("node_nfsd_read_ahead_cache_not_found_total",
			"Total number of NFSd read ahead cache not found.", nil, nil),
		packets: prometheus.NewDesc("node_nfsd_packets_total",
			"Total NFSd network packets (sent+received) by protocol type.", []string{"proto"}, nil),
		connections: prometheus.NewDesc("node_nfsd_connections_total",
			"Total number of NFSd TCP connections.", nil, nil),
		rpcErrors: prometheus.NewDesc("node_nfsd_rpc_errors_total",
			"Total number of NFSd RPC errors by error type.", []string{"error"}, nil),
		serverRPCs: prometheus.NewDesc("node_nfsd_server_rpcs_total",
			"Total number of NFSd RPCs.", nil, nil),
		requests: prometheus.NewDesc("node_nfsd_requests_total",
			"Total number NFSd Requests by method and protocol.", []string{"proto", "method"}, nil),
	}, nil
}

// nfsdMethod is one node_nfsd_requests_total series: node_exporter serves a
// fixed list of procedures per protocol version (the unused NFSv4 op slots
// and NULL are left out), so the list is spelled out here.
type nfsdMethod struct {
	name  string
	value uint64
}

func (c *nfsdCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	s, err := c.fs.ServerRPCStats()
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %s: %w", collectors.ErrNoData, c.path, err)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", c.path, err)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.replyCacheHits, s.ReplyCache.Hits)
	counter(c.replyCacheMisses, s.ReplyCache.Misses)
	counter(c.replyCacheNoCache, s.ReplyCache.NoCache)
	// The kernel leaves the other file handle counters at zero.
	counter(c.fileHandlesStale, s.FileHandles.Stale)
	counter(c.diskBytesRead, s.InputOutput.Read)
	counter(c.diskBytesWritten, s.InputOutput.Write)
	ch <- prometheus.MustNewConstMetric(c.serverThreads, prometheus.GaugeValue, float64(s.Threads.Threads))
	ch <- prometheus.MustNewConstMetric(c.readAheadCacheSize, prometheus.GaugeValue, float64(s.ReadAheadCache.CacheSize))
	counter(c.readAheadCacheNotFound, s.ReadAheadCache.NotFound)
	counter(c.packets, s.Network.UDPCount, "udp")
	counter(c.packets, s.Network.TCPCount, "tcp")
	counter(c.connections, s.Network.TCPConnect)
	counter(c.rpcErrors, s.ServerRPC.BadFmt, "fmt")
	counter(c.rpcErrors, s.ServerRPC.BadAuth, "auth")
	counter(c.rpcErrors, s.ServerRPC.BadcInt, "cInt")
	counter(c.serverRPCs, s.ServerRPC.RPCCount)

	v2, v3, v4 := &s.V2Stats, &s.V3Stats, &s.V4Ops
	for _, m := range []nfsdMethod{
		{"GetAttr", v2.GetAttr}, {"SetAttr", v2.SetAttr}, {"Root", v2.Root}, {"Lookup", v2.Lookup},
		{"ReadLink", v2.ReadLink}, {"Read", v2.Read}, {"WrCache", v2.WrCache}, {"Write", v2.Write},
		{"Create", v2.Create}, {"Remove", v2.Remove}, {"Rename", v2.Rename}, {"Link", v2.Link},
		{"SymLink", v2.SymLink}, {"MkDir", v2.MkDir}, {"RmDir", v2.RmDir}, {"ReadDir", v2.ReadDir},
		{"FsStat", v2.FsStat},
	} {
		counter(c.requests, m.value, "2", m.name)
	}
	for _, m := range []nfsdMethod{
		{"GetAttr", v3.GetAttr}, {"SetAttr", v3.SetAttr}, {"Lookup", v3.Lookup}, {"Access", v3.Access},
		{"ReadLink", v3.ReadLink}, {"Read", v3.Read}, {"Write", v3.Write}, {"Create", v3.Create},
		{"MkDir", v3.MkDir}, {"SymLink", v3.SymLink}, {"MkNod", v3.MkNod}, {"Remove", v3.Remove},
		{"RmDir", v3.RmDir}, {"Rename", v3.Rename}, {"Link", v3.Link}, {"ReadDir", v3.ReadDir},
		{"ReadDirPlus", v3.ReadDirPlus}, {"FsStat", v3.FsStat}, {"FsInfo", v3.FsInfo},
		{"PathConf", v3.PathConf}, {"Commit", v3.Commit},
	} {
		counter(c.requests, m.value, "3", m.name)
	}
	for _, m := range []nfsdMethod{
		{"Access", v4.Access}, {"Close", v4.Close}, {"Commit", v4.Commit}, {"Create", v4.Create},
		{"DelegPurge", v4.DelegPurge}, {"DelegReturn", v4.DelegReturn}, {"GetAttr", v4.GetAttr},
		{"GetFH", v4.GetFH}, {"Link", v4.Link}, {"Lock", v4.Lock}, {"Lockt", v4.Lockt},
		{"Locku", v4.Locku}, {"Lookup", v4.Lookup}, {"LookupRoot", v4.LookupRoot},
		{"Nverify", v4.Nverify}, {"Open", v4.Open}, {"OpenAttr", v4.OpenAttr},
		{"OpenConfirm", v4.OpenConfirm}, {"OpenDgrd", v4.OpenDgrd}, {"PutFH", v4.PutFH},
		{"Read", v4.Read}, {"ReadDir", v4.ReadDir}, {"ReadLink", v4.ReadLink}, {"Remove", v4.Remove},
		{"Rename", v4.Rename}, {"Renew", v4.Renew}, {"RestoreFH", v4.RestoreFH},
		{"SaveFH", v4.SaveFH}, {"SecInfo", v4.SecInfo}, {"SetAttr", v4.SetAttr},
		{"SetClientID", v4.SetClientID}, {"SetClientIDConfirm", v4.SetClientIDConfirm},
		{"Verify", v4.Verify}, {"Write", v4.Write}, {"RelLockOwner", v4.RelLockOwner},
		{"WdelegGetattr", s.WdelegGetattr},
	} {
		counter(c.requests, m.value, "4", m.name)
	}
	return nil
}
