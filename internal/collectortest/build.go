package collectortest

import (
	"path/filepath"
	"testing"

	"github.com/alecthomas/kingpin/v2"

	"github.com/nodeagent/nodeagent/collectors"
)

// Lookup returns the registration of the collector named name.
func Lookup(t testing.TB, name string) collectors.Registration {
	t.Helper()
	r, ok := collectors.Lookup(name)
	if !ok {
		t.Fatalf("no collector named %q is registered", name)
	}
	return r
}

// Build builds the named collector through its registration, with a fresh
// flag set parsed from args, over env: exactly what the binary does.
func Build(t testing.TB, name string, env collectors.Env, args ...string) (collectors.Collector, error) {
	t.Helper()
	app := kingpin.New("test", "")
	factory := Lookup(t, name).Setup(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parsing %v: %v", args, err)
	}
	return factory(env)
}

// MustBuild is Build that fails the test on an error.
func MustBuild(t testing.TB, name string, env collectors.Env, args ...string) collectors.Collector {
	t.Helper()
	c, err := Build(t, name, env, args...)
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	return c
}

// BuildFixture is Build over a fixture tree: dir is relative to the calling
// package's testdata/, or absolute (a copy made by CopyTree).
func BuildFixture(t testing.TB, name, dir string, args ...string) (collectors.Collector, error) {
	t.Helper()
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("testdata", dir)
	}
	return Build(t, name, Env(t, dir), args...)
}

// MustBuildFixture is BuildFixture that fails the test on an error.
func MustBuildFixture(t testing.TB, name, dir string, args ...string) collectors.Collector {
	t.Helper()
	c, err := BuildFixture(t, name, dir, args...)
	if err != nil {
		t.Fatalf("building %s: %v", name, err)
	}
	return c
}
