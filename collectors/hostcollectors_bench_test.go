package collectors

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// benchEnv is an Env over root's proc/, sys/ and root/ (this host's when
// root is "/"), on the real clock, logging nowhere: b.Log would keep every
// line in memory.
func benchEnv(b *testing.B, root string) Env {
	b.Helper()
	env := envAt(b, root)
	env.Logger = slog.New(slog.DiscardHandler)
	env.Now = time.Now
	if root == "/" {
		env.Paths.RootFS = "/"
	}
	return env
}

// benchUpdate runs c once and drains its metrics, as the Scraper does.
func benchUpdate(b *testing.B, c Collector) int {
	ch := make(chan prometheus.Metric, 256)
	n := make(chan int)
	go func() {
		count := 0
		for range ch {
			count++
		}
		n <- count
	}()
	err := c.Update(context.Background(), ch)
	close(ch)
	count := <-n
	if err != nil && !errors.Is(err, ErrNoData) {
		b.Fatalf("Update: %v", err)
	}
	return count
}

// benchHostCollectors are the collectors this benchmark measures, each with
// its richest fixture.
var benchHostCollectors = []struct {
	name, fixture string
	args          []string
}{
	{"bonding", "bonding/good", nil},
	{"conntrack", "conntrack/good", nil},
	{"edac", "edac/good", nil},
	{"hwmon", "hwmon/good", nil},
	{"mdadm", "mdadm/good", nil},
	{"netclass", "netclass/good", nil},
	{"nvme", "nvme/good", nil},
	{"os", "os/support-end", nil},
	{"powersupplyclass", "powersupplyclass/good", nil},
	{"rapl", "rapl/good", nil},
	{"schedstat", "schedstat/good", nil},
	{"softnet", "softnet/good", nil},
	{"textfile", "textfile", []string{"--collector.textfile.directory=testdata/textfile/good"}},
	{"thermal_zone", "thermal_zone/good", nil},
	{"time", "time/good", nil},
	{"timex", "time/good", nil},
	{"udp_queues", "udp_queues/good", nil},
	{"uname", "time/good", nil},
}

func benchBuild(b *testing.B, name string, env Env, args []string) Collector {
	b.Helper()
	app := kingpin.New("bench", "")
	factory := registry[name].Setup(app)
	if _, err := app.Parse(args); err != nil {
		b.Fatal(err)
	}
	c, err := factory(env)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkHostCollectors measures one Update of each collector over its
// fixture tree: the cost of reading and parsing the files and building the
// metrics, without the Scraper's merge (see BenchmarkScraperGather).
func BenchmarkHostCollectors(b *testing.B) {
	for _, tc := range benchHostCollectors {
		b.Run(tc.name, func(b *testing.B) {
			c := benchBuild(b, tc.name, benchEnv(b, filepath.Join("testdata", tc.fixture)), tc.args)
			series := benchUpdate(b, c)
			b.ReportAllocs()
			for b.Loop() {
				benchUpdate(b, c)
			}
			b.ReportMetric(float64(series), "series")
		})
	}
}

// BenchmarkHostCollectorsRealHost is the same over this machine's /proc,
// /sys and /; collectors whose subsystem the host lacks measure the cost of
// finding that out.
func BenchmarkHostCollectorsRealHost(b *testing.B) {
	env := benchEnv(b, "/")
	for _, tc := range benchHostCollectors {
		if tc.name == "textfile" {
			continue // no textfile directory on the host
		}
		b.Run(tc.name, func(b *testing.B) {
			c := benchBuild(b, tc.name, env, nil)
			series := benchUpdate(b, c)
			b.ReportAllocs()
			for b.Loop() {
				benchUpdate(b, c)
			}
			b.ReportMetric(float64(series), "series")
		})
	}
}
