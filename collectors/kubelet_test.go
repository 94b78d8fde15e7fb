package collectors

import (
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

// TestFactoryMayBuildNothing: a factory returning no collector and no error
// (the kubelet layer without a kubelet) leaves the collector out.
func TestFactoryMayBuildNothing(t *testing.T) {
	t.Parallel()
	regs := []Registration{
		{Name: "present", Layer: LayerNode, DefaultEnabled: true, Setup: func(FlagApp) Factory {
			return func(Env) (Collector, error) { return &fakeCollector{name: "present"}, nil }
		}},
		{Name: "absent", Layer: LayerKubelet, DefaultEnabled: true, Setup: func(FlagApp) Factory {
			return func(Env) (Collector, error) { return nil, nil }
		}},
	}
	app := kingpin.New("test", "")
	sel := AddFlags(app, regs)
	if _, err := app.Parse(nil); err != nil {
		t.Fatal(err)
	}
	ins, err := sel.Build(Env{}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins) != 1 || ins[0].Name != "present" {
		t.Errorf("built %+v; want only the collector that had something to build", ins)
	}
}
