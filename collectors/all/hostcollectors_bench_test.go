package all

import (
	"log/slog"
	"testing"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// BenchmarkHostCollectorsRealHost measures one Update of every node-layer
// collector over this machine's /proc, /sys and / (collectors whose
// subsystem the host lacks measure the cost of finding that out).
// Each layer package's BenchmarkGoldenCases is the same over its fixture
// trees.
func BenchmarkHostCollectorsRealHost(b *testing.B) {
	env := collectortest.HostEnv(b)
	env.Logger = slog.New(slog.DiscardHandler) // b.Log would keep every line
	for _, r := range collectors.Registrations() {
		if r.Layer != collectors.LayerNode || r.Name == "textfile" { // no textfile directory on the host
			continue
		}
		b.Run(r.Name, func(b *testing.B) {
			c, err := collectortest.Build(b, r.Name, env)
			if err != nil {
				b.Fatal(err)
			}
			collectortest.BenchUpdate(b, c)
		})
	}
}
