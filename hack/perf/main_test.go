package main

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/quotacgroup"
)

func TestDescribeBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// net with cgo on links the C library's resolver.
	src := "package main\n\nimport \"net\"\n\nfunc main() { _, _ = net.LookupHost(\"localhost\") }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	build := func(out string, cgo string, args ...string) string {
		t.Helper()
		cmd := exec.Command("go", append(append([]string{"build"}, args...), "-o", out, ".")...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+cgo)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, b)
		}
		return filepath.Join(dir, out)
	}
	for _, tc := range []struct {
		bin  string
		want []string
		not  []string
	}{
		{build("static", "0", "-trimpath"), []string{"static,", "CGO_ENABLED=0", "-trimpath"}, []string{"dynamic"}},
		{build("dynamic", "1"), []string{"dynamically linked", "CGO_ENABLED=1"}, []string{"static", "trimpath"}},
	} {
		got, err := describeBinary(tc.bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: %q lacks %q", filepath.Base(tc.bin), got, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(got, n) {
				t.Errorf("%s: %q has %q", filepath.Base(tc.bin), got, n)
			}
		}
	}
	if _, err := describeBinary(filepath.Join(dir, "main.go")); err == nil || !strings.Contains(err.Error(), "main.go") {
		t.Errorf("a source file: error %v, want one naming it", err)
	}
}

func TestInterleave(t *testing.T) {
	var calls []string
	// Process 0 costs 2 ms a scrape and process 1 costs 3, plus a
	// drift that grows with each block, which both see alike.
	blocks := 0
	got, err := interleave(2, 12, 5, func(i, m int) (measurement, error) {
		calls = append(calls, fmt.Sprintf("%d:%d", i, m))
		blocks++
		drift := float64(blocks)
		return measurement{cpuMs: float64(2+i) + drift, wallMs: float64(i), kbSent: 1, rssMiB: float64(10*i + blocks)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The order turns from block to block; the last block is short.
	if want := "0:5 1:5 1:5 0:5 0:2 1:2"; strings.Join(calls, " ") != want {
		t.Errorf("calls %q, want %q", strings.Join(calls, " "), want)
	}
	// Means weighted by the scrapes of each block: process 0 saw drifts
	// 1, 4 and 5, process 1 drifts 2, 3 and 6.
	want := []measurement{
		{cpuMs: 2 + (5*1+5*4+2*5)/12.0, wallMs: 0, kbSent: 1, rssMiB: 5},
		{cpuMs: 3 + (5*2+5*3+2*6)/12.0, wallMs: 1, kbSent: 1, rssMiB: 16},
	}
	for i := range want {
		if math.Abs(got[i].cpuMs-want[i].cpuMs) > 1e-9 || got[i].wallMs != want[i].wallMs || got[i].kbSent != want[i].kbSent || got[i].rssMiB != want[i].rssMiB {
			t.Errorf("process %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := interleave(2, 4, 2, func(i, m int) (measurement, error) {
		if i == 1 {
			return measurement{}, errors.New("scrape failed")
		}
		return measurement{}, nil
	}); err == nil {
		t.Error("a failed measurement: no error")
	}
}

func TestNodeSeriesDifference(t *testing.T) {
	set := func(keys ...string) map[string]bool {
		m := map[string]bool{}
		for _, k := range keys {
			m[k] = true
		}
		return m
	}
	naOnly, neOnly := nodeSeriesDifference(
		set(`node_load1`, `node_network_receive_nohandler_total{device="lo"}`, `node_scrape_collector_success{collector="cpu"}`, `nodeagent_build_info`, `go_goroutines`),
		set(`node_load1`, `node_exporter_build_info{version="1.12.1"}`, `node_scrape_collector_duration_seconds{collector="netdev"}`, `node_time_seconds`),
	)
	if want := []string{`node_network_receive_nohandler_total{device="lo"}`}; !slices.Equal(naOnly, want) {
		t.Errorf("nodeagent only: %q, want %q", naOnly, want)
	}
	if want := []string{`node_time_seconds`}; !slices.Equal(neOnly, want) {
		t.Errorf("node_exporter only: %q, want %q", neOnly, want)
	}
}

// TestNodeExporterConformancePerfHost runs both sides of make perf's host
// comparison as hack/perf starts them and requires the same node_* series
// from both: a default of nodeagent's that node_exporter is not given
// (netlink for the interface counters was one) would otherwise make the
// ratios compare unlike work. make node-conformance sets NODE_EXPORTER_BIN.
func TestNodeExporterConformancePerfHost(t *testing.T) {
	neBin := os.Getenv("NODE_EXPORTER_BIN")
	if neBin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	naBin := filepath.Join(t.TempDir(), "nodeagent")
	cmd := exec.Command("go", "build", "-o", naBin, "github.com/nodeagent/nodeagent/cmd/nodeagent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	na, ne, err := startHostPair(naBin, neBin, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ne.stop()
	defer na.stop()
	// A series may come or go between the two scrapes (an interface
	// added by a test running beside this one): a difference must hold
	// over three tries to fail the test.
	var naOnly, neOnly []string
	for range 3 {
		naKeys, err := seriesKeys(na.url)
		if err != nil {
			t.Fatal(err)
		}
		neKeys, err := seriesKeys(ne.url)
		if err != nil {
			t.Fatal(err)
		}
		if naOnly, neOnly = nodeSeriesDifference(naKeys, neKeys); len(naOnly)+len(neOnly) == 0 {
			return
		}
	}
	t.Errorf("node_* series served by nodeagent only (%d): %q", len(naOnly), naOnly)
	t.Errorf("node_* series served by node_exporter only (%d): %q", len(neOnly), neOnly)
}

func TestQuotaCommand(t *testing.T) {
	cgroupOf := func(command func(string, ...string) *exec.Cmd) string {
		t.Helper()
		b, err := command("/bin/cat", "/proc/self/cgroup").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	command, remove, err := quotaCommand(0)
	if err != nil {
		t.Fatal(err)
	}
	remove()
	if got := cgroupOf(command); strings.Contains(got, "nodeagent-quota-") {
		t.Errorf("no quota, yet the process ran in %s", got)
	}
	command, remove, err = quotaCommand(0.5)
	if errors.Is(err, quotacgroup.ErrUnsupported) || errors.Is(err, os.ErrPermission) {
		t.Skipf("no cgroup with a CPU quota here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	got := cgroupOf(command)
	_, name, ok := strings.Cut(got, "/nodeagent-quota-")
	if !ok {
		t.Fatalf("the process ran in %s, not in the quota's cgroup", got)
	}
	name, _, _ = strings.Cut(name, "\n")
	remove()
	for _, dir := range []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup"} {
		if _, err := os.Stat(filepath.Join(dir, "nodeagent-quota-"+name)); err == nil {
			t.Errorf("%s/nodeagent-quota-%s is left after remove", dir, name)
		}
	}
}
