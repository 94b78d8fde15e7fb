package collectors

import (
	"log/slog"
	"testing"
	"time"
)

// BenchmarkHostCollectorsRealHost measures one Update of every node-layer
// collector over this machine's /proc, /sys and / (collectors whose
// subsystem the host lacks measure the cost of finding that out).
// BenchmarkGoldenCases is the same over the fixture trees.
func BenchmarkHostCollectorsRealHost(b *testing.B) {
	env := envAt(b, "/")
	env.Logger = slog.New(slog.DiscardHandler) // b.Log would keep every line
	env.Now = time.Now
	env.Paths = Paths{ProcFS: "/proc", SysFS: "/sys", RootFS: "/", UdevData: "/run/udev/data", CgroupFS: "/sys/fs/cgroup"}
	for _, r := range Registrations() {
		if r.Layer != LayerNode || r.Name == "textfile" { // no textfile directory on the host
			continue
		}
		b.Run(r.Name, func(b *testing.B) {
			c, err := buildCollectorEnv(b, r.Name, env)
			if err != nil {
				b.Fatal(err)
			}
			benchUpdate(b, c)
		})
	}
}
