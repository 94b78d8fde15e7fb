package node

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// Golden cases: testdata/cpu (good, info, no-guest, hotplug, malformed).

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
