package main

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testlog"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nodeagent/nodeagent/collectors"
)

// hostCollectors are the node_exporter-compatible collectors (every
// node-layer registration) that TestRealHost requires to succeed on this
// machine and BenchmarkNodeScrape runs; docs/performance.md gives the
// node_exporter flags for the same set.
func hostCollectors() []string {
	var out []string
	for _, r := range collectors.Registrations() {
		if r.Layer == collectors.LayerNode {
			out = append(out, r.Name)
		}
	}
	return out
}

// scrapeRealHost serves /metrics/node of the agent, with default flags,
// over this machine's /proc, /sys and /.
func scrapeRealHost(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skipf("no /proc on this machine (%v): the real-host test needs Linux", err)
	}
	a, err := newAgent(parseServe(t, "--log.level=debug"), &testlog.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics/node", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parsing /metrics/node: %v", err)
	}
	return mfs
}

func value(m *dto.Metric) float64 {
	return m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// single returns the value of a family with one series.
func single(t *testing.T, mfs map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf, ok := mfs[name]
	if !ok || len(mf.GetMetric()) != 1 {
		t.Fatalf("%s: want one series, got %v", name, mf)
	}
	return value(mf.GetMetric()[0])
}

// procStatCPUs counts the cpuN lines of /proc/stat.
func procStatCPUs(t *testing.T) int {
	t.Helper()
	f, err := os.Open("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	cpuN := regexp.MustCompile(`^cpu\d+ `)
	for sc.Scan() {
		if cpuN.MatchString(sc.Text()) {
			n++
		}
	}
	return n
}

// TestRealHost runs the agent against this machine's /proc and /sys and
// checks that the core node families are served with plausible values and
// that every host collector succeeds.
func TestRealHost(t *testing.T) {
	t.Parallel()
	mfs := scrapeRealHost(t)

	t.Run("collectors succeed", func(t *testing.T) {
		ok := map[string]float64{}
		for _, m := range mfs["nodeagent_scrape_collector_success"].GetMetric() {
			ok[label(m, "collector")] = value(m)
		}
		for _, c := range hostCollectors() {
			if ok[c] != 1 {
				t.Errorf("collector %s: nodeagent_scrape_collector_success %v, want 1", c, ok[c])
			}
		}
	})

	t.Run("cpu", func(t *testing.T) {
		cpus := procStatCPUs(t)
		perCPU := map[string]map[string]float64{}
		for _, m := range mfs["node_cpu_seconds_total"].GetMetric() {
			cpu := label(m, "cpu")
			if perCPU[cpu] == nil {
				perCPU[cpu] = map[string]float64{}
			}
			perCPU[cpu][label(m, "mode")] = value(m)
		}
		if len(perCPU) != cpus || cpus == 0 {
			t.Fatalf("node_cpu_seconds_total has %d CPUs, /proc/stat %d", len(perCPU), cpus)
		}
		for cpu, modes := range perCPU {
			if len(modes) != 8 {
				t.Errorf("cpu %s has %d modes, want 8: %v", cpu, len(modes), modes)
			}
			total := 0.0
			for mode, v := range modes {
				if v < 0 {
					t.Errorf("cpu %s mode %s: %v seconds", cpu, mode, v)
				}
				total += v
			}
			if total <= 0 {
				t.Errorf("cpu %s: no time in any mode", cpu)
			}
		}
	})

	t.Run("memory", func(t *testing.T) {
		total := single(t, mfs, "node_memory_MemTotal_bytes")
		avail := single(t, mfs, "node_memory_MemAvailable_bytes")
		if total <= 0 || avail <= 0 || avail > total {
			t.Errorf("MemAvailable %v, MemTotal %v: want 0 < available <= total", avail, total)
		}
	})

	t.Run("filesystem", func(t *testing.T) {
		size := map[string]float64{}
		for _, m := range mfs["node_filesystem_size_bytes"].GetMetric() {
			size[label(m, "mountpoint")] = value(m)
		}
		plausible := 0
		for _, m := range mfs["node_filesystem_avail_bytes"].GetMetric() {
			mp, avail := label(m, "mountpoint"), value(m)
			if avail < 0 || avail > size[mp] {
				t.Errorf("%s: avail %v, size %v", mp, avail, size[mp])
			}
			if size[mp] > 0 {
				plausible++
			}
		}
		if plausible == 0 {
			t.Errorf("no filesystem with a size: %v", size)
		}
	})

	t.Run("network", func(t *testing.T) {
		devs := map[string]bool{}
		for _, m := range mfs["node_network_receive_bytes_total"].GetMetric() {
			devs[label(m, "device")] = true
		}
		if !devs["lo"] {
			t.Errorf("node_network_receive_bytes_total has no lo: %v", devs)
		}
	})

	t.Run("load and stat", func(t *testing.T) {
		if v := single(t, mfs, "node_load1"); v < 0 {
			t.Errorf("node_load1 %v", v)
		}
		if v := single(t, mfs, "node_context_switches_total"); v <= 0 {
			t.Errorf("node_context_switches_total %v", v)
		}
		if bt := single(t, mfs, "node_boot_time_seconds"); bt <= 0 || bt > float64(time.Now().Unix()) {
			t.Errorf("node_boot_time_seconds %v is not in the past", bt)
		}
	})

	t.Run("disks", func(t *testing.T) {
		b, err := os.ReadFile("/proc/diskstats")
		if err != nil {
			t.Skipf("no /proc/diskstats: %v", err)
		}
		exclude := regexp.MustCompile(`^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`)
		want := 0
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 3 && !exclude.MatchString(f[2]) {
				want++
			}
		}
		if got := len(mfs["node_disk_io_time_seconds_total"].GetMetric()); got != want {
			t.Errorf("node_disk_io_time_seconds_total has %d disks, /proc/diskstats %d", got, want)
		}
	})

	t.Run("pressure", func(t *testing.T) {
		if _, err := os.ReadFile("/proc/pressure/cpu"); err != nil {
			t.Skipf("this kernel has no PSI: %v", err)
		}
		for _, name := range []string{"node_pressure_cpu_waiting_seconds_total", "node_pressure_memory_waiting_seconds_total",
			"node_pressure_memory_stalled_seconds_total", "node_pressure_io_waiting_seconds_total", "node_pressure_io_stalled_seconds_total"} {
			if v := single(t, mfs, name); v < 0 {
				t.Errorf("%s %v", name, v)
			}
		}
	})
}
