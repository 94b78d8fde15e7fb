// Tests across the layer packages: what holds for every host collector,
// built as the binary builds them.
package all

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// hostCollectors are the node_exporter-compatible collectors that
// testdata/host feeds in full.
var hostCollectors = []string{"cpu", "cpufreq", "diskstats", "entropy", "filefd", "filesystem", "loadavg",
	"meminfo", "netdev", "netstat", "pressure", "sockstat", "stat", "vmstat"}

// newHostScraper builds the named collectors through their registrations
// with default flags, as the binary does, over the tree at root.
func newHostScraper(t testing.TB, env collectors.Env, names []string) *collectors.Scraper {
	t.Helper()
	var regs []collectors.Registration
	for _, n := range names {
		r, ok := collectors.Lookup(n)
		if !ok {
			t.Fatalf("no collector %s", n)
		}
		regs = append(regs, r)
	}
	app := kingpin.New("test", "")
	sel := collectors.AddFlags(app, regs)
	if _, err := app.Parse(nil); err != nil {
		t.Fatal(err)
	}
	ins, err := sel.Build(env, false)
	if err != nil {
		t.Fatal(err)
	}
	s, err := collectors.NewScraper(ins, collectors.ScraperOptions{Timeout: 30 * time.Second, MaxConcurrency: 4, Logger: env.Logger, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHostMalformedFileOthersServed: one malformed /proc file fails the
// collectors that read it, with an error naming it, and every other
// collector is still served in the same scrape.
func TestHostMalformedFileOthersServed(t *testing.T) {
	t.Parallel()
	host := collectortest.HostTree(t)
	root := t.TempDir()
	for _, d := range []string{"sys", "root", "udev"} {
		if err := os.Symlink(filepath.Join(host, d), filepath.Join(root, d)); err != nil {
			t.Fatal(err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(host, "proc"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "proc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "stat" {
			if err := os.Symlink(filepath.Join(host, "proc", e.Name()), filepath.Join(root, "proc", e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	collectortest.WriteFiles(t, root, map[string]string{"proc/stat": "cpu  1 2 3 4\ncpu0 1 2 x 4\nbtime 1\n"})

	env := collectortest.TempEnv(t, root)
	logs := &testlog.Buffer{}
	env.Logger = logs.Logger()
	s := newHostScraper(t, env, hostCollectors)
	mfs, err := s.Gather(time.Now().Add(30*time.Second), hostCollectors)
	if err != nil {
		t.Fatal(err)
	}
	v := collectortest.Values(mfs)
	for _, n := range hostCollectors {
		want := 1.0
		if n == "cpu" || n == "stat" {
			want = 0
		}
		if got := v["nodeagent_scrape_collector_success{collector="+n+"}"]; got != want {
			t.Errorf("collector %s: success %v, want %v", n, got, want)
		}
	}
	if v["node_memory_MemTotal_bytes{}"] != 16318480*1024 || v["node_load1{}"] != 0.21 {
		t.Error("the collectors that do not read /proc/stat were not served")
	}
	if !logs.Contains(filepath.Join(root, "proc", "stat")) {
		t.Errorf("no log line names the malformed file:\n%s", logs.String())
	}
}

// TestHostFlagErrors: a bad flag value is a startup error naming the flag.
func TestHostFlagErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		collector string
		args      []string
		want      string
	}{
		{"cpu", []string{"--collector.cpu.info.flags-include=("}, "--collector.cpu.info.flags-include"},
		{"cpu", []string{"--collector.cpu.info.bugs-include=[z-a]"}, "--collector.cpu.info.bugs-include"},
		{"diskstats", []string{"--collector.diskstats.device-exclude=^sd", "--collector.diskstats.device-include=^nvme"}, "mutually exclusive"},
		{"diskstats", []string{"--collector.diskstats.device-include=("}, "--collector.diskstats.device-include"},
		{"filesystem", []string{"--collector.filesystem.mount-points-exclude=^/x", "--collector.filesystem.mount-points-include=^/y"}, "mutually exclusive"},
		{"filesystem", []string{"--collector.filesystem.fs-types-exclude=^x", "--collector.filesystem.fs-types-include=^y"}, "mutually exclusive"},
		{"filesystem", []string{"--collector.filesystem.mount-points-exclude=("}, "--collector.filesystem.mount-points-exclude"},
		{"filesystem", []string{"--collector.filesystem.mount-timeout=0s"}, "--collector.filesystem.mount-timeout"},
		{"netdev", []string{"--collector.netdev.device-exclude=^x", "--collector.netdev.device-include=^y"}, "mutually exclusive"},
		{"netdev", []string{"--collector.netdev.device-exclude=("}, "--collector.netdev.device-exclude"},
		{"netstat", []string{"--collector.netstat.fields=("}, "--collector.netstat.fields"},
		{"vmstat", []string{"--collector.vmstat.fields=("}, "--collector.vmstat.fields"},
	} {
		app := kingpin.New("test", "")
		factory := collectortest.Lookup(t, tc.collector).Setup(app)
		if _, err := app.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		_, err := factory(collectortest.TempEnv(t, t.TempDir()))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: want an error containing %q, got %v", tc.collector, tc.args, tc.want, err)
		}
	}
}

// TestHostCollectorsWithoutSubsystem: on a host that lacks the subsystem
// (an empty /proc, /sys and rootfs), each collector serves nothing and
// reports no data or plain success, never a failure.
func TestHostCollectorsWithoutSubsystem(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		noData bool // ErrNoData, as node_exporter; else plain success
	}{
		{"bonding", true}, {"conntrack", true}, {"cpufreq", true}, {"edac", true},
		{"hwmon", true}, {"mdadm", true}, {"netclass", true}, {"nvme", true},
		{"os", true}, {"powersupplyclass", true}, {"rapl", true},
		{"schedstat", true}, {"softnet", true}, {"thermal_zone", true},
		{"udp_queues", true}, {"watchdog", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := collectortest.MustBuild(t, tc.name, collectortest.TempEnv(t, t.TempDir()))
			out, err := collectortest.Exposition(t, c)
			if len(out) != 0 {
				t.Errorf("served %q", out)
			}
			if gotNoData := errors.Is(err, collectors.ErrNoData); gotNoData != tc.noData || (err != nil && !gotNoData) {
				t.Errorf("Update error %v; want ErrNoData: %v", err, tc.noData)
			}
		})
	}
}
