package network

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
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
	queues   *collectors.CompactDesc
}

func newUDPQueuesCollector(env collectors.Env) *udpQueuesCollector {
	return &udpQueuesCollector{
		proc:     env.Proc,
		procPath: env.Paths.ProcFS,
		logger:   env.Logger,
		queues:   collectors.NewCompactDesc("node_udp_queues", "Number of allocated memory in the kernel for UDP datagrams in bytes.", dto.MetricType_GAUGE, "queue", "ip"),
	}
}

func (c *udpQueuesCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the same series in compact form.
func (c *udpQueuesCollector) UpdateCompact(context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
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
			return b.Families(), fmt.Errorf("reading %s/%s: %w", c.procPath, family.file, err)
		}
		b.AddValues(c.queues, float64(s.TxQueueLength), "tx", family.ip)
		b.AddValues(c.queues, float64(s.RxQueueLength), "rx", family.ip)
	}
	if missing == 2 {
		return b.Families(), fmt.Errorf("%w: neither %s/net/udp nor net/udp6 exists", collectors.ErrNoData, c.procPath)
	}
	return b.Families(), nil
}
