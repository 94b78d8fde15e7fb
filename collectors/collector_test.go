package collectors_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/collectors"

	"github.com/alecthomas/kingpin/v2"
	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// someKubelet stands for a configured kubelet: Build only asks whether
// there is one.
type someKubelet struct{}

func (someKubelet) Metrics(context.Context, string) ([]*dto.MetricFamily, error) { return nil, nil }
func (someKubelet) ReadOnlyPortOpen(context.Context) (bool, error)               { return false, nil }
func (someKubelet) AnonymousAuthEnabled(context.Context) (bool, error)           { return false, nil }
func (someKubelet) SecurityCheckInterval() time.Duration                         { return time.Minute }

func testRegistrations(built *[]string) []collectors.Registration {
	mk := func(name string, layer collectors.Layer, def bool) collectors.Registration {
		return collectors.Registration{Name: name, Layer: layer, DefaultEnabled: def, Setup: func(app collectors.FlagApp) collectors.Factory {
			var cfg struct{ size int }
			app.Flag("collector."+name+".size", "A collector's own flag.").Default("1").IntVar(&cfg.size)
			return func(collectors.Env) (collectors.Collector, error) {
				*built = append(*built, name)
				if name == "broken" {
					return nil, errors.New("cannot open device")
				}
				return &collectortest.Fake{Name: name, Value: float64(cfg.size)}, nil
			}
		}}
	}
	bareMetal := mk("delta", collectors.LayerNode, true)
	bareMetal.OffWithKubelet = true
	return []collectors.Registration{
		mk("alpha", collectors.LayerNode, true),
		mk("beta", collectors.LayerCadvisor, true),
		mk("gamma", collectors.LayerNode, false),
		mk("broken", collectors.LayerNode, false),
		bareMetal,
	}
}

func TestSelectionFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		kubelet bool // a kubelet is configured
		want    []string
	}{
		{"defaults", nil, false, []string{"alpha", "beta", "delta"}},
		{"enable one", []string{"--collector.gamma"}, false, []string{"alpha", "beta", "gamma", "delta"}},
		{"disable one", []string{"--no-collector.alpha"}, false, []string{"beta", "delta"}},
		{"disable defaults", []string{"--collector.disable-defaults"}, false, nil},
		{"disable defaults keeps explicit", []string{"--collector.disable-defaults", "--collector.gamma", "--collector.alpha"}, false, []string{"alpha", "gamma"}},
		{"own flag", []string{"--collector.alpha.size=7", "--no-collector.beta", "--no-collector.delta"}, false, []string{"alpha"}},
		{"kubelet turns bare-metal default off", nil, true, []string{"alpha", "beta"}},
		{"kubelet and explicit enable", []string{"--collector.delta"}, true, []string{"alpha", "beta", "delta"}},
		{"kubelet and explicit enable with disable defaults", []string{"--collector.disable-defaults", "--collector.delta"}, true, []string{"delta"}},
		{"bare metal, explicit disable", []string{"--no-collector.delta"}, false, []string{"alpha", "beta"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var built []string
			app := kingpin.New("test", "")
			disable := app.Flag("collector.disable-defaults", "").Bool()
			sel := collectors.AddFlags(app, testRegistrations(&built))
			if _, err := app.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			env := collectors.Env{}
			if tc.kubelet {
				env.Kubelet = someKubelet{}
			}
			ins, err := sel.Build(env, *disable)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, in := range ins {
				got = append(got, in.Name)
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(built, tc.want) {
				t.Errorf("enabled %v (built %v), want %v", got, built, tc.want)
			}
			if tc.name == "own flag" && ins[0].Collector.(*collectortest.Fake).Value != 7 {
				t.Error("collector flag did not reach the factory")
			}
		})
	}
}

func TestSelectionUnknownCollectorFlag(t *testing.T) {
	t.Parallel()
	var built []string
	app := kingpin.New("test", "")
	app.Terminate(nil)
	app.UsageWriter(io.Discard)
	collectors.AddFlags(app, testRegistrations(&built))
	_, err := app.Parse([]string{"--collector.nope"})
	if err == nil || !strings.Contains(err.Error(), "collector.nope") {
		t.Errorf("want an error naming collector.nope, got %v", err)
	}
}

func TestSelectionFactoryError(t *testing.T) {
	t.Parallel()
	var built []string
	app := kingpin.New("test", "")
	sel := collectors.AddFlags(app, testRegistrations(&built))
	if _, err := app.Parse([]string{"--collector.broken"}); err != nil {
		t.Fatal(err)
	}
	_, err := sel.Build(collectors.Env{}, false)
	if err == nil || !strings.Contains(err.Error(), "collector broken: cannot open device") {
		t.Errorf("want an error naming the collector, got %v", err)
	}
}

// Factories see which collectors are enabled in the agent, after
// --collector.disable-defaults and the kubelet-dependent defaults.
func TestSelectionEnvEnabled(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	probe := collectors.Registration{Name: "probe", Layer: collectors.LayerNode, DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(env collectors.Env) (collectors.Collector, error) {
				for _, n := range []string{"alpha", "beta", "gamma", "delta", "probe", "nope"} {
					seen[n] = env.Enabled(n)
				}
				return &collectortest.Fake{Name: "probe"}, nil
			}
		}}
	var built []string
	app := kingpin.New("test", "")
	sel := collectors.AddFlags(app, append(testRegistrations(&built), probe))
	if _, err := app.Parse([]string{"--no-collector.beta", "--collector.gamma"}); err != nil {
		t.Fatal(err)
	}
	if _, err := sel.Build(collectors.Env{Kubelet: someKubelet{}}, false); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"alpha": true, "beta": false, "gamma": true, "delta": false, "probe": true, "nope": false}
	for n, w := range want {
		if seen[n] != w {
			t.Errorf("Enabled(%q) = %v, want %v", n, seen[n], w)
		}
	}
}

// TestSelectionAbsent: Build says why each collector it did not build is
// missing, and copies the passthrough marker to what it built.
func TestSelectionAbsent(t *testing.T) {
	t.Parallel()
	regs := []collectors.Registration{
		{Name: "on", Layer: collectors.LayerKubelet, DefaultEnabled: true, Passthrough: true, Setup: func(collectors.FlagApp) collectors.Factory {
			return func(collectors.Env) (collectors.Collector, error) { return &collectortest.Fake{Name: "on"}, nil }
		}},
		{Name: "off", Layer: collectors.LayerKubelet, Passthrough: true, Setup: func(collectors.FlagApp) collectors.Factory {
			return func(collectors.Env) (collectors.Collector, error) { return &collectortest.Fake{Name: "off"}, nil }
		}},
		{Name: "nothing-here", Layer: collectors.LayerKubelet, DefaultEnabled: true, Setup: func(collectors.FlagApp) collectors.Factory {
			return func(collectors.Env) (collectors.Collector, error) {
				return nil, fmt.Errorf("%w: no container runtime found", collectors.ErrNoData)
			}
		}},
		{Name: "silent", Layer: collectors.LayerNode, DefaultEnabled: true, Setup: func(collectors.FlagApp) collectors.Factory {
			return func(collectors.Env) (collectors.Collector, error) { return nil, nil }
		}},
	}
	app := kingpin.New("test", "")
	sel := collectors.AddFlags(app, regs)
	if _, err := app.Parse(nil); err != nil {
		t.Fatal(err)
	}
	ins, err := sel.Build(collectors.Env{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].Name != "on" || !ins[0].Passthrough {
		t.Errorf("built %+v; want only the passthrough on, marked", ins)
	}
	want := map[string]string{
		"off":          "collector off is disabled (enable it with --collector.off)",
		"nothing-here": "collector returned no data: no container runtime found",
		"silent":       "",
	}
	if diff := cmp.Diff(want, sel.Absent()); diff != "" {
		t.Errorf("Absent (-want +got):\n%s", diff)
	}
}
