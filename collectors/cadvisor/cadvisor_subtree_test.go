package cadvisor

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// The guaranteed pod of the systemd-driver fixture and one of its
// containers, directly under the kubepods slice.
const (
	subtreePod       = "/kubepods.slice/kubepods-pod5e5613d6_fccb_40d6_967b_447697d4d871.slice"
	subtreeContainer = subtreePod + "/cri-containerd-2dc4f498c7d3bdd5eb004993649b454501a050d889b49a754bc62a2343553ce5.scope"
)

// TestCadvisorSubtreeZerosSameAnswer: over a tree whose subtree files
// count their subtrees, as the kernel's do, serving the zeros below a
// zero unread gives the same answers, scrape after scrape, as reading
// every file, and keeps fewer descriptors.
func TestCadvisorSubtreeZerosSameAnswer(t *testing.T) {
	t.Parallel()
	caseDir := filepath.Join("testdata", "cadvisor", "systemd-containerd")
	tree := prepareCase(t, caseDir)
	envOn, _ := caseEnv(t, caseDir, tree)
	envOff, _ := caseEnv(t, caseDir, tree)
	on := buildCadvisor(t, envOn)
	off := buildCadvisor(t, envOff, "--no-collector.cadvisor.subtree-zeros")
	for scrape := 1; scrape <= 3; scrape++ {
		got, want := exposeText(t, on), exposeText(t, off)
		if got != want {
			t.Fatalf("scrape %d: the answers differ:\n%s", scrape, firstDiff(got, want))
		}
	}
	if on.subtree == 0 {
		t.Error("no subtree files with the default flags")
	}
	if off.subtree != 0 {
		t.Errorf("subtree files %v with --no-collector.cadvisor.subtree-zeros", off.subtree)
	}
	if on.budget.Open() >= off.budget.Open() {
		t.Errorf("%d descriptors kept with subtree zeros, %d without; want fewer", on.budget.Open(), off.budget.Open())
	}
}

// TestCadvisorSubtreeZeros follows one container whose ancestors hold
// zero in memory.swap.current, memory.events and memory.pressure. No descriptor is kept,
// so that a file removed here is gone for the reader, as a cgroupfs file
// removed by the kernel is for its open descriptors.
func TestCadvisorSubtreeZeros(t *testing.T) {
	t.Parallel()
	caseDir := filepath.Join("testdata", "cadvisor", "systemd-containerd")
	tree := prepareCase(t, caseDir)
	env, _ := caseEnv(t, caseDir, tree)
	c := buildCadvisor(t, env, "--collector.cadvisor.max-open-files=0")
	write := func(cgroup, file, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(tree, "cgroup", filepath.FromSlash(cgroup), file), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	value := func(mfs map[string]*dto.MetricFamily, family, id string) (float64, bool) {
		m, ok := seriesFor(mfs, family, id)
		if !ok {
			return 0, false
		}
		return valueOf(m), true
	}
	scrape := func() map[string]*dto.MetricFamily {
		t.Helper()
		mfs, err := familyMap(t, c)
		if err != nil {
			t.Fatal(err)
		}
		return mfs
	}
	scrape() // the first scrape reads every file of every cgroup

	// A value no kernel would show (the container swaps, its pod and the
	// kubepods slice do not) tells that the file was not read.
	write(subtreeContainer, "memory.swap.current", "4096\n")
	if v, ok := value(scrape(), "container_memory_swap", subtreeContainer); !ok || v != 0 {
		t.Errorf("container_memory_swap = %v (served %v) below ancestors at zero, want 0 without reading the file", v, ok)
	}

	// Swap charged as the kernel charges it, to the container and each
	// ancestor: the next scrape reads it.
	for _, cg := range []string{subtreeContainer, subtreePod, "/kubepods.slice"} {
		write(cg, "memory.swap.current", "4096\n")
	}
	mfs := scrape()
	for _, cg := range []string{subtreeContainer, subtreePod, "/kubepods.slice"} {
		if v, _ := value(mfs, "container_memory_swap", cg); v != 4096 {
			t.Errorf("container_memory_swap of %s = %v once it swaps, want 4096", cg, v)
		}
	}

	// The same for OOM kills, counted in memory.events of the container
	// and its ancestors; the fixture's container already has one.
	for _, cg := range []string{subtreeContainer, subtreePod, "/kubepods.slice"} {
		write(cg, "memory.events", "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\noom_group_kill 0\n")
	}
	if v, _ := value(scrape(), "container_oom_events_total", subtreeContainer); v != 3 {
		t.Errorf("container_oom_events_total = %v, want 3", v)
	}

	// Swap leaves the node: zero again from the top, and then the
	// container's own file is no longer read.
	for _, cg := range []string{subtreePod, "/kubepods.slice"} {
		write(cg, "memory.swap.current", "0\n")
	}
	scrape()
	if v, _ := value(scrape(), "container_memory_swap", subtreeContainer); v != 0 {
		t.Errorf("container_memory_swap = %v below ancestors at zero again, want 0", v)
	}

	// PSI: the fixture's cgroups have all waited for memory. Where the
	// kubepods slice and the pod never did, neither did the container,
	// whose file is then not read.
	const noStall = "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
	for _, cg := range []string{subtreePod, "/kubepods.slice"} {
		write(cg, "memory.pressure", noStall)
	}
	write(subtreeContainer, "memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=7000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3000000\n")
	mfs = scrape()
	for _, family := range []string{"container_pressure_memory_waiting_seconds_total", "container_pressure_memory_stalled_seconds_total"} {
		if v, ok := value(mfs, family, subtreeContainer); !ok || v != 0 {
			t.Errorf("%s = %v (served %v) below ancestors that never stalled, want 0 without reading the file", family, v, ok)
		}
	}
	// The container stalls, and so, as the kernel accounts it, do its
	// ancestors: the next scrape reads it.
	for _, cg := range []string{subtreePod, "/kubepods.slice"} {
		write(cg, "memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=7000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=3000000\n")
	}
	mfs = scrape()
	for family, want := range map[string]float64{"container_pressure_memory_waiting_seconds_total": 7, "container_pressure_memory_stalled_seconds_total": 3} {
		if v, _ := value(mfs, family, subtreeContainer); v != want {
			t.Errorf("%s = %v once it stalls, want %v", family, v, want)
		}
	}
	for _, cg := range []string{subtreePod, "/kubepods.slice"} {
		write(cg, "memory.pressure", noStall)
	}
	scrape()

	// The memory controller leaves the container (disabled in its pod's
	// cgroup.subtree_control): its memory files go, and so do its series.
	// memory.pressure is a core file and stays, served as its ancestors'
	// zero.
	for _, f := range []string{"memory.current", "memory.stat", "memory.peak", "memory.max", "memory.min", "memory.swap.current", "memory.swap.max", "memory.events"} {
		if err := os.Remove(filepath.Join(tree, "cgroup", filepath.FromSlash(subtreeContainer), f)); err != nil {
			t.Fatal(err)
		}
	}
	mfs = scrape()
	for _, family := range []string{"container_memory_swap", "container_memory_usage_bytes"} {
		if v, ok := value(mfs, family, subtreeContainer); ok {
			t.Errorf("%s = %v served for a cgroup without the memory controller", family, v)
		}
	}
	if v, ok := value(mfs, "container_pressure_memory_waiting_seconds_total", subtreeContainer); !ok || v != 0 {
		t.Errorf("container_pressure_memory_waiting_seconds_total = %v (served %v) without the memory controller, want 0", v, ok)
	}
}

// exposeText is c's answer in the text format.
func exposeText(t *testing.T, c *cadvisorCollector) string {
	t.Helper()
	mfs, err := c.UpdateFamilies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}

// firstDiff is the first line where a and b differ.
func firstDiff(a, b string) string {
	al, bl := bytes.Split([]byte(a), []byte("\n")), bytes.Split([]byte(b), []byte("\n"))
	for i := range min(len(al), len(bl)) {
		if !bytes.Equal(al[i], bl[i]) {
			return "got  " + string(al[i]) + "\nwant " + string(bl[i])
		}
	}
	return "one is a prefix of the other"
}
