package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "udp_queues",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) { return newUDPQueuesCollector(env), nil }
		},
	})
}

// udpQueuesCollector serves the bytes queued in UDP sockets, summed from
// /proc/net/udp and /proc/net/udp6 (per network namespace: the host's only
// when the agent runs in it).
type udpQueuesCollector struct {
	proc     procfs.FS
	procPath string
	logger   *slog.Logger
	queues   *prometheus.Desc
}

func newUDPQueuesCollector(env collectors.Env) *udpQueuesCollector {
	return &udpQueuesCollector{
		proc:     env.Proc,
		procPath: env.Paths.ProcFS,
		logger:   env.Logger,
		queues: prometheus.NewDesc("node_udp_queues",
			"Number of allocated memory in the kernel for UDP datagrams in bytes.", []string{"queue", "ip"}, nil),
	}
}

func (c *udpQueuesCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	missing := 0
	for _, family := range []struct {
		ip, file string
		read     func() (*procfs.NetUDPSummary, error)
	}{
		{"v4", "net/udp", c.proc.NetUDPSummary},
		{"v6", "net/udp6", c.proc.NetUDP6Summary},
	} {
		s, err := family.read()
		if errors.Is(err, fs.ErrNotExist) {
			// No IPv6 (ipv6.disable=1), or no UDP at all.
			c.logger.Debug("udp_queues: no socket table", "file", family.file, "err", err)
			missing++
			continue
		}
		if err != nil {
			return fmt.Errorf("reading %s/%s: %w", c.procPath, family.file, err)
		}
		ch <- prometheus.MustNewConstMetric(c.queues, prometheus.GaugeValue, float64(s.TxQueueLength), "tx", family.ip)
		ch <- prometheus.MustNewConstMetric(c.queues, prometheus.GaugeValue, float64(s.RxQueueLength), "rx", family.ip)
	}
	if missing == 2 {
		return fmt.Errorf("%w: neither %s/net/udp nor net/udp6 exists", collectors.ErrNoData, c.procPath)
	}
	return nil
}
