package collectors_test

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/collectors"

	"github.com/alecthomas/kingpin/v2"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

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
	return []collectors.Registration{
		mk("alpha", collectors.LayerNode, true),
		mk("beta", collectors.LayerCadvisor, true),
		mk("gamma", collectors.LayerNode, false),
		mk("broken", collectors.LayerNode, false),
	}
}

func TestSelectionFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"defaults", nil, []string{"alpha", "beta"}},
		{"enable one", []string{"--collector.gamma"}, []string{"alpha", "beta", "gamma"}},
		{"disable one", []string{"--no-collector.alpha"}, []string{"beta"}},
		{"disable defaults", []string{"--collector.disable-defaults"}, nil},
		{"disable defaults keeps explicit", []string{"--collector.disable-defaults", "--collector.gamma", "--collector.alpha"}, []string{"alpha", "gamma"}},
		{"own flag", []string{"--collector.alpha.size=7", "--no-collector.beta"}, []string{"alpha"}},
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
			ins, err := sel.Build(collectors.Env{}, *disable)
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
