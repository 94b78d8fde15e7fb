package all

import (
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"

	"github.com/nodeagent/nodeagent/collectors"
)

// flagNamespaceOwners maps the flag namespaces node_exporter spells
// differently from its collectors' names to those collectors: operators'
// existing flags keep working.
var flagNamespaceOwners = map[string]string{
	"powersupply": "powersupplyclass", // --collector.powersupply.ignored-supplies
}

// TestRegistrations checks every real registration: valid layer, and its
// Setup registers only flags in its own namespace: --collector.<name>.*,
// or, for a passthrough, --<name>.* (its source's settings, named after the
// source as --kubelet.* are: --kube-proxy.url, --runtime.metrics-url).
func TestRegistrations(t *testing.T) {
	t.Parallel()
	regs := collectors.Registrations()
	if len(regs) == 0 {
		t.Fatal("no collectors registered")
	}
	t.Logf("%d collectors registered", len(regs))
	app := kingpin.New("test", "")
	builtin := map[string]bool{}
	for _, f := range app.Model().Flags {
		builtin[f.Name] = true
	}
	collectors.AddFlags(app, regs)
	for _, f := range app.Model().Flags {
		if builtin[f.Name] {
			continue
		}
		name := strings.TrimPrefix(f.Name, "collector.")
		if name == f.Name {
			source, _, _ := strings.Cut(f.Name, ".")
			if r, ok := collectors.Lookup(source); ok && r.Passthrough {
				continue
			}
			t.Errorf("collector flag --%s is outside the collector.<name> namespace", f.Name)
			continue
		}
		owner, _, _ := strings.Cut(name, ".")
		if o, ok := flagNamespaceOwners[owner]; ok {
			owner = o
		}
		if _, ok := collectors.Lookup(owner); !ok {
			t.Errorf("flag --%s belongs to no registered collector", f.Name)
		}
	}
}

// TestRegistrationsLintPatterns: every registered collector's lint
// exceptions compile (they are compiled only when linting).
func TestRegistrationsLintPatterns(t *testing.T) {
	t.Parallel()
	n := 0
	for _, r := range collectors.Registrations() {
		n += len(r.KnownLintProblems)
	}
	if n == 0 {
		t.Fatal("no collector declares a lint exception")
	}
	if _, err := collectors.Lint(nil, false); err != nil {
		t.Error(err)
	}
}
