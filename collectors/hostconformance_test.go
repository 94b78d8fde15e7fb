package collectors

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"
)

// Collectors whose values come from system calls (uname, time, timex)
// cannot be compared with node_exporter over fixture trees: their golden
// tests use fake system calls. Instead, the tests here run both on this
// host and compare what does not change from one moment to the next.

// hostEnv is an Env over this host's /proc, /sys and /.
func hostEnv(t *testing.T) Env {
	t.Helper()
	proc, err := procfs.NewFS("/proc")
	if err != nil {
		t.Fatal(err)
	}
	sys, err := sysfs.NewFS("/sys")
	if err != nil {
		t.Fatal(err)
	}
	return Env{
		Logger:     testLogger(t),
		Paths:      Paths{ProcFS: "/proc", SysFS: "/sys", RootFS: "/", UdevData: "/run/udev/data", CgroupFS: "/sys/fs/cgroup"},
		Proc:       proc,
		Sys:        sys,
		Now:        time.Now,
		Registerer: prometheus.NewRegistry(),
	}
}

// hostFamilies runs the named collector, ours through its registration and
// node_exporter's alone, both over this host, and returns both outputs.
func hostFamilies(t *testing.T, collector string) (ours, theirs map[string]*dto.MetricFamily) {
	t.Helper()
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	// runNodeExporter points the --path flags below the case directory:
	// "/" gives /proc and /sys (and a rootfs these collectors do not read).
	theirs = runNodeExporter(t, bin, goldenCase{collector: collector, dir: "/"})
	c, err := buildRegistered(t, collector, hostEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	return parseExposition(t, out), theirs
}

// familyShapes renders each family as its type, help and label names.
func familyShapes(mfs map[string]*dto.MetricFamily) map[string]string {
	out := map[string]string{}
	for name, mf := range mfs {
		var labels []string
		for _, m := range mf.GetMetric() {
			var names []string
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
			}
			slices.Sort(names)
			labels = append(labels, strings.Join(names, ","))
		}
		slices.Sort(labels)
		labels = slices.Compact(labels)
		out[name] = fmt.Sprintf("%s %q labels{%s}", mf.GetType(), mf.GetHelp(), strings.Join(labels, " | "))
	}
	return out
}

func TestNodeExporterConformanceHostUname(t *testing.T) {
	t.Parallel()
	ours, theirs := hostFamilies(t, "uname")
	// uname does not change while the test runs: values are compared too.
	compareFamilies(t, ours, theirs, conformanceRules{ignoreFamily: map[string]bool{}, ignoreHelp: map[string]bool{}})
	if len(ours) == 0 {
		t.Error("no families served")
	}
}

func TestNodeExporterConformanceHostShapes(t *testing.T) {
	t.Parallel()
	for _, collector := range []string{"time", "timex"} {
		t.Run(collector, func(t *testing.T) {
			t.Parallel()
			ours, theirs := hostFamilies(t, collector)
			if diff := cmp.Diff(familyShapes(theirs), familyShapes(ours)); diff != "" {
				t.Errorf("families differ from node_exporter's on this host (-node_exporter +nodeagent):\n%s", diff)
			}
			if len(ours) == 0 {
				t.Error("no families served")
			}
		})
	}
}
