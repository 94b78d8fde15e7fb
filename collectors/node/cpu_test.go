package node

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// Golden cases: testdata/cpu (good, info, no-guest, hotplug, malformed,
// and node_exporter's own fixture: node-exporter-e2e, node-exporter-e2e-info).

// TestCPUCountersNeverGoBack scrapes a changing /proc/stat: small backward
// steps are held at the last value, an idle drop of 3 s or more (a CPU
// unplugged and plugged again) starts the CPU over, and a CPU gone from
// /proc/stat is no longer served.
func TestCPUCountersNeverGoBack(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	env := collectortest.TempEnv(t, root)
	c, err := newCPUCollector(env, cpuConfig{})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		stat string
		want []string
	}{
		{
			name: "first reading",
			stat: "cpu0 1000 0 500 90000 0 0 0 0 0 0\ncpu1 2000 0 600 80000 0 0 0 0 0 0\n",
			want: []string{
				`node_cpu_seconds_total{cpu="0",mode="idle"} 900`, `node_cpu_seconds_total{cpu="0",mode="user"} 10`,
				`node_cpu_seconds_total{cpu="1",mode="idle"} 800`, `node_cpu_seconds_total{cpu="1",mode="user"} 20`,
			},
		},
		{
			name: "user steps back a little: held",
			stat: "cpu0 990 0 500 90100 0 0 0 0 0 0\ncpu1 2010 0 600 80100 0 0 0 0 0 0\n",
			want: []string{
				`node_cpu_seconds_total{cpu="0",mode="idle"} 901`, `node_cpu_seconds_total{cpu="0",mode="user"} 10`,
				`node_cpu_seconds_total{cpu="1",mode="idle"} 801`, `node_cpu_seconds_total{cpu="1",mode="user"} 20.1`,
			},
		},
		{
			name: "cpu1 idle drops by 5 s (hotplug): starts over; cpu0 idle drops by 1 s: held",
			stat: "cpu0 1000 0 500 90000 0 0 0 0 0 0\ncpu1 5 0 6 79600 0 0 0 0 0 0\n",
			want: []string{
				`node_cpu_seconds_total{cpu="0",mode="idle"} 901`, `node_cpu_seconds_total{cpu="0",mode="user"} 10`,
				`node_cpu_seconds_total{cpu="1",mode="idle"} 796`, `node_cpu_seconds_total{cpu="1",mode="user"} 0.05`,
			},
		},
		{
			name: "cpu1 goes offline",
			stat: "cpu0 1100 0 500 90200 0 0 0 0 0 0\n",
			want: []string{
				`node_cpu_seconds_total{cpu="0",mode="idle"} 902`, `node_cpu_seconds_total{cpu="0",mode="user"} 11`,
			},
		},
	}
	for _, s := range steps {
		collectortest.WriteFiles(t, root, map[string]string{"proc/stat": "cpu  0 0 0 0 0 0 0 0 0 0\n" + s.stat + "btime 1\n"})
		lines, err := collectortest.SeriesLines(t, c, "node_cpu_seconds_total")
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		var got []string
		for _, l := range lines {
			if strings.Contains(l, `mode="idle"`) || strings.Contains(l, `mode="user"`) {
				got = append(got, l)
			}
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
}

// With cpufreq on, cpufreq owns node_cpu_frequency_hertz and cpu.info
// leaves /proc/cpuinfo's frequency out, so that the family is never
// served twice; with cpufreq off, cpu.info serves it.
func TestCPUFrequencyLeftToCpufreq(t *testing.T) {
	t.Parallel()
	for _, cpufreq := range []bool{false, true} {
		env := collectortest.Env(t, filepath.Join("testdata", "cpu", "node-exporter-e2e"))
		env.Enabled = func(name string) bool { return name == "cpufreq" && cpufreq }
		lines, err := collectortest.SeriesLines(t, collectortest.MustBuild(t, "cpu", env, "--collector.cpu.info"), "node_cpu_frequency_hertz")
		if err != nil {
			t.Fatal(err)
		}
		if got := len(lines); cpufreq && got != 0 || !cpufreq && got != 8 {
			t.Errorf("cpufreq on: %v: %d node_cpu_frequency_hertz series, want %d", cpufreq, got, map[bool]int{false: 8, true: 0}[cpufreq])
		}
	}
}

// TestNodeExporterConformanceCPUFrequency compares node_cpu_frequency_hertz
// from /proc/cpuinfo with node_exporter 1.12.1's, which serves it while
// cpufreq is on: node_exporter runs cpu (with info) and cpufreq over
// node_exporter's own fixture, whose CPUs have no cpuinfo_cur_freq (so
// cpufreq does not serve the family); nodeagent's cpu collector is built
// as with cpufreq off, and its cpufreq collector beside it. Every family
// of both is compared.
func TestNodeExporterConformanceCPUFrequency(t *testing.T) {
	t.Parallel()
	bin := collectortest.NodeExporterBin(t)
	dir, err := filepath.Abs(filepath.Join("testdata", "cpu", "node-exporter-e2e"))
	if err != nil {
		t.Fatal(err)
	}
	theirs := collectortest.RunNodeExporter(t, bin, collectortest.Case{Collector: "cpu", Dir: dir, Args: []string{"--collector.cpu.info", "--collector.cpufreq"}})
	ours := map[string]*dto.MetricFamily{}
	for name, args := range map[string][]string{"cpu": {"--collector.cpu.info"}, "cpufreq": nil} {
		out, err := collectortest.Exposition(t, collectortest.MustBuild(t, name, collectortest.Env(t, dir), args...))
		if err != nil {
			t.Fatal(err)
		}
		maps.Copy(ours, collectortest.Parse(t, out))
	}
	if ours["node_cpu_frequency_hertz"] == nil || theirs["node_cpu_frequency_hertz"] == nil {
		t.Fatalf("node_cpu_frequency_hertz: nodeagent serves it: %v, node_exporter: %v", ours["node_cpu_frequency_hertz"] != nil, theirs["node_cpu_frequency_hertz"] != nil)
	}
	tally := collectortest.CompareFamilies(t, ours, theirs, &collectortest.Rules{})
	if tally.Series == 0 {
		t.Fatalf("compared no series: %s", tally)
	}
	t.Log(tally)
}
