package collectors

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

func testRegistrations(built *[]string) []Registration {
	mk := func(name string, layer Layer, def bool) Registration {
		return Registration{Name: name, Layer: layer, DefaultEnabled: def, Setup: func(app FlagApp) Factory {
			var cfg struct{ size int }
			app.Flag("collector."+name+".size", "A collector's own flag.").Default("1").IntVar(&cfg.size)
			return func(Env) (Collector, error) {
				*built = append(*built, name)
				if name == "broken" {
					return nil, errors.New("cannot open device")
				}
				return &fakeCollector{name: name, value: float64(cfg.size)}, nil
			}
		}}
	}
	return []Registration{
		mk("alpha", LayerNode, true),
		mk("beta", LayerCadvisor, true),
		mk("gamma", LayerNode, false),
		mk("broken", LayerNode, false),
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
			sel := AddFlags(app, testRegistrations(&built))
			if _, err := app.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			ins, err := sel.Build(Env{}, *disable)
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
			if tc.name == "own flag" && ins[0].Collector.(*fakeCollector).value != 7 {
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
	AddFlags(app, testRegistrations(&built))
	_, err := app.Parse([]string{"--collector.nope"})
	if err == nil || !strings.Contains(err.Error(), "collector.nope") {
		t.Errorf("want an error naming collector.nope, got %v", err)
	}
}

func TestSelectionFactoryError(t *testing.T) {
	t.Parallel()
	var built []string
	app := kingpin.New("test", "")
	sel := AddFlags(app, testRegistrations(&built))
	if _, err := app.Parse([]string{"--collector.broken"}); err != nil {
		t.Fatal(err)
	}
	_, err := sel.Build(Env{}, false)
	if err == nil || !strings.Contains(err.Error(), "collector broken: cannot open device") {
		t.Errorf("want an error naming the collector, got %v", err)
	}
}

// flagNamespaceOwners maps the flag namespaces node_exporter spells
// differently from its collectors' names to those collectors: operators'
// existing flags keep working.
var flagNamespaceOwners = map[string]string{
	"powersupply": "powersupplyclass", // --collector.powersupply.ignored-supplies
}

// TestRegistrations checks every real registration: valid layer, and its
// Setup registers only flags in its own namespace.
func TestRegistrations(t *testing.T) {
	t.Parallel()
	regs := Registrations()
	if len(regs) == 0 {
		t.Fatal("no collectors registered")
	}
	app := kingpin.New("test", "")
	builtin := map[string]bool{}
	for _, f := range app.Model().Flags {
		builtin[f.Name] = true
	}
	AddFlags(app, regs)
	for _, f := range app.Model().Flags {
		if builtin[f.Name] {
			continue
		}
		name := strings.TrimPrefix(f.Name, "collector.")
		if name == f.Name {
			t.Errorf("collector flag --%s is outside the collector.<name> namespace", f.Name)
			continue
		}
		owner, _, _ := strings.Cut(name, ".")
		if o, ok := flagNamespaceOwners[owner]; ok {
			owner = o
		}
		if _, ok := Lookup(owner); !ok {
			t.Errorf("flag --%s belongs to no registered collector", f.Name)
		}
	}
}
