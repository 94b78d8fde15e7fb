package cadvisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/cgroup"
	"github.com/nodeagent/nodeagent/internal/exposition"
	"github.com/nodeagent/nodeagent/internal/podmeta"
	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// familyMap runs c once and indexes its families by name.
func familyMap(t *testing.T, c *cadvisorCollector) (map[string]*dto.MetricFamily, error) {
	t.Helper()
	mfs, err := c.UpdateFamilies(context.Background())
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out, err
}

// seriesFor returns the value of family's series for cgroup id, if any.
func seriesFor(mfs map[string]*dto.MetricFamily, family, id string) (*dto.Metric, bool) {
	for _, m := range mfs[family].GetMetric() {
		if labelOf(m, "id") == id {
			return m, true
		}
	}
	return nil, false
}

// TestCadvisorRefusesNonV2 points the collector at a root that is not a
// cgroup v2 hierarchy: every scrape fails with the reason and the fix,
// other collectors are still served, and once the path becomes valid the
// collector recovers without a restart.
func TestCadvisorRefusesNonV2(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := buildCadvisor(t, collectors.Env{Logger: collectortest.Logger(t), Paths: collectors.Paths{CgroupFS: dir}})
	_, err := c.UpdateFamilies(context.Background())
	if !errors.Is(err, cgroup.ErrNotCgroup2) || !strings.Contains(err.Error(), "--path.cgroupfs="+dir) {
		t.Fatalf("err = %v, want ErrNotCgroup2 naming --path.cgroupfs", err)
	}
	other := &collectortest.Fake{Name: "other", Value: 1}
	s, err := collectors.NewScraper([]collectors.Instance{
		{Name: "cadvisor", Layer: collectors.LayerCadvisor, Collector: c},
		{Name: "other", Layer: collectors.LayerNode, Collector: other},
	}, collectors.ScraperOptions{Timeout: 5 * time.Second, MaxConcurrency: 2, Logger: collectortest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := s.Gather(time.Now().Add(5*time.Second), []string{"cadvisor", "other"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "nodeagent_scrape_collector_success":
			for _, m := range mf.GetMetric() {
				got[labelOf(m, "collector")] = m.GetGauge().GetValue()
			}
		case "test_other_value":
			got["other value"] = 1
		}
	}
	if got["cadvisor"] != 0 || got["other"] != 1 || got["other value"] != 1 {
		t.Errorf("want cadvisor failed and the other collector served, got %v", got)
	}

	if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cpu.stat"), []byte("usage_usec 5\nuser_usec 3\nsystem_usec 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	fams, err := familyMap(t, c)
	if err != nil {
		t.Fatalf("after the path became valid: %v", err)
	}
	if _, ok := seriesFor(fams, "container_cpu_usage_seconds_total", "/"); !ok {
		t.Error("root cgroup not served after recovery")
	}
}

// TestCadvisorHybridHost: on this machine's hybrid layout, the default
// --path.cgroupfs serves the unified hierarchy's cgroups with their memory
// and CPU limits from the v1 hierarchies: the root's CPU, working set and
// shares.
func TestCadvisorHybridHost(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.controllers"); err != nil {
		t.Skip("not a hybrid cgroup host")
	}
	logs := &testlog.Buffer{}
	c := buildCadvisor(t, collectors.Env{Logger: logs.Logger(), Paths: collectors.Paths{CgroupFS: "/sys/fs/cgroup", ProcFS: "/proc"}})
	fams, err := familyMap(t, c)
	if err != nil {
		t.Logf("Update: %v", err) // a cgroup that vanished mid-read, say; the root is what is checked
	}
	for _, name := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_rss"} {
		m, ok := seriesFor(fams, name, "/")
		if v := m.GetCounter().GetValue() + m.GetGauge().GetValue(); !ok || v <= 0 {
			t.Errorf("%s of the root: %v, %v; want a positive value", name, v, ok)
		}
	}
	// CPU limits from the v1 cpu hierarchy: the root has shares and a
	// period, no quota.
	for _, name := range []string{"container_spec_cpu_shares", "container_spec_cpu_period"} {
		if m, ok := seriesFor(fams, name, "/"); !ok || m.GetGauge().GetValue() <= 0 {
			t.Errorf("%s of the root: %v, %v; want a positive value", name, m.GetGauge().GetValue(), ok)
		}
	}
	if !logs.Contains("hybrid cgroup host") {
		t.Errorf("no log line says memory comes from v1:\n%s", logs)
	}
}

// TestCadvisorPodMetadata checks the metadata consumer: one Snapshot per
// scrape, Unknown on a pod or container the snapshot lacks (and not for
// sandboxes), what is known served meanwhile, and labels completed once a
// refreshed snapshot knows more.
func TestCadvisorPodMetadata(t *testing.T) {
	t.Parallel()
	c, src, full := metadataCase(t)

	app := containerID(uidGuaranteed + "/app")
	appPath := "/kubepods/pod" + uidGuaranteed + "/" + app
	sandboxPath := "/kubepods/pod" + uidGuaranteed + "/" + containerID(uidGuaranteed+"/sandbox")
	labelsOf := func(mfs map[string]*dto.MetricFamily, id string) string {
		m, ok := seriesFor(mfs, "container_cpu_user_seconds_total", id)
		if !ok {
			t.Fatalf("%s not served", id)
		}
		var parts []string
		for _, l := range m.GetLabel() {
			parts = append(parts, l.GetName()+"="+l.GetValue())
		}
		return strings.Join(parts, ",")
	}

	// Everything known: no Unknown calls, sandboxes included.
	mfs, err := familyMap(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if n := src.unknown.Load(); n != 0 {
		t.Errorf("Unknown called %d times with a complete snapshot", n)
	}
	if got, want := labelsOf(mfs, appPath), "container=app,id="+appPath+",image=registry.example/app:1.0,name="+app+",namespace=shop,pod=checkout-7d9f"; got != want {
		t.Errorf("app labels %s, want %s", got, want)
	}
	if got, want := labelsOf(mfs, sandboxPath), "container=,id="+sandboxPath+",image=,name="+containerID(uidGuaranteed+"/sandbox")+",namespace=shop,pod=checkout-7d9f"; got != want {
		t.Errorf("sandbox labels %s, want %s", got, want)
	}

	// A snapshot that lacks the container: served with what the path
	// tells, and the source is told.
	partial := withoutContainer(full, app)
	src.snap.Store(partial)
	mfs, err = familyMap(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if src.unknown.Load() == 0 {
		t.Error("Unknown not called for a container the snapshot lacks")
	}
	if got, want := labelsOf(mfs, appPath), "container=,id="+appPath+",image=,name="+app+",namespace=shop,pod=checkout-7d9f"; got != want {
		t.Errorf("unknown container labels %s, want %s", got, want)
	}
	if _, ok := seriesFor(mfs, "container_network_receive_bytes_total", sandboxPath); !ok {
		t.Error("the sandbox (oldest unnamed leaf) lost its network")
	}

	// No snapshot yet: path-only labels, Unknown called.
	src.snap.Store(nil)
	before := src.unknown.Load()
	mfs, err = familyMap(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if src.unknown.Load() == before {
		t.Error("Unknown not called before the first snapshot")
	}
	if got, want := labelsOf(mfs, appPath), "container=,id="+appPath+",image=,name="+app+",namespace=,pod="; got != want {
		t.Errorf("labels without a snapshot %s, want %s", got, want)
	}

	// The refreshed snapshot completes the labels.
	src.snap.Store(full)
	mfs, err = familyMap(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := labelsOf(mfs, appPath); !strings.Contains(got, "container=app,") {
		t.Errorf("labels not completed by the refreshed snapshot: %s", got)
	}
}

// TestCadvisorPodMetadataText follows pod metadata that changes under a
// running container through the text answer the handler writes, scraped
// twice at each step: a container's label sets keep their rendered text
// across answers, and that text must follow the snapshot on the next
// scrape in every family, not only in the client_model form.
func TestCadvisorPodMetadataText(t *testing.T) {
	t.Parallel()
	c, src, full := metadataCase(t)
	s, err := collectors.NewScraper([]collectors.Instance{{Name: "cadvisor", Layer: collectors.LayerCadvisor, Collector: c}},
		collectors.ScraperOptions{Timeout: 30 * time.Second, MaxConcurrency: 2, Logger: collectortest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	app := containerID(uidGuaranteed + "/app")
	appPath := "/kubepods/pod" + uidGuaranteed + "/" + app
	partial := withoutContainer(full, app)
	known := map[string]string{"container": "app", "image": "registry.example/app:1.0", "namespace": "shop", "pod": "checkout-7d9f"}
	unnamed := map[string]string{"container": "", "image": "", "namespace": "shop", "pod": "checkout-7d9f"}
	pathOnly := map[string]string{"container": "", "image": "", "namespace": "", "pod": ""}

	for _, step := range []struct {
		name string
		snap *podmeta.Snapshot
		want map[string]string
	}{
		{"complete snapshot", full, known},
		{"the container left out", partial, unnamed},
		{"no snapshot", nil, pathOnly},
		{"complete again", full, known},
	} {
		src.snap.Store(step.snap)
		for round := range 2 {
			res, err := s.GatherResult(time.Now().Add(30*time.Second), []string{"cadvisor"})
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/metrics/cadvisor", nil)
			exposition.Write(rec, req, res.Families, res.Compact, nil, func(msg string, err error) { t.Fatalf("%s: %v", msg, err) })
			series := 0
			for name, mf := range collectortest.Parse(t, rec.Body.Bytes()) {
				for _, m := range mf.GetMetric() {
					if labelOf(m, "id") != appPath {
						continue
					}
					series++
					for label, want := range step.want {
						if got := labelOf(m, label); got != want {
							t.Errorf("%s, answer %d: %s of %s has %s=%q, want %q", step.name, round+1, name, appPath, label, got, want)
						}
					}
				}
			}
			if series < 20 {
				t.Fatalf("%s, answer %d: %d series of %s, want at least 20", step.name, round+1, series, appPath)
			}
		}
	}
}

// metadataCase is the cgroupfs-driver fixture's collector, its pod source
// and the source's complete snapshot.
func metadataCase(t *testing.T) (*cadvisorCollector, *staticPods, *podmeta.Snapshot) {
	t.Helper()
	caseDir := filepath.Join("testdata", "cadvisor", "cgroupfs-containerd")
	env, src := caseEnv(t, caseDir, prepareCase(t, caseDir))
	return buildCadvisor(t, env), src, src.snap.Load()
}

// withoutContainer is snap as it is before /pods lists container id.
func withoutContainer(snap *podmeta.Snapshot, id string) *podmeta.Snapshot {
	out := &podmeta.Snapshot{Pods: snap.Pods, Containers: map[string]podmeta.Container{}}
	for other, ct := range snap.Containers {
		if other != id {
			out.Containers[other] = ct
		}
	}
	return out
}

// TestCadvisorFamiliesCovered checks that the richest golden case drives
// every family the collector has, so every emit path is compared exactly.
func TestCadvisorFamiliesCovered(t *testing.T) {
	t.Parallel()
	want := collectortest.Parse(t, collectortest.ReadFile(t, filepath.Join("testdata", "cadvisor", "systemd-containerd", "want.prom")))
	for _, f := range allContainerFamilies() {
		if _, ok := want[f.name]; !ok {
			t.Errorf("%s is in no golden case", f.name)
		}
	}
}

func TestCadvisorFlagValidation(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--collector.cadvisor.metric-include=("},
		{"--collector.cadvisor.host-cgroups=[a"},
		{"--collector.cadvisor.max-open-files=-1"},
		{"--collector.cadvisor.read-concurrency=-2"},
	} {
		c, err := buildCadvisorErr(t, collectors.Env{}, args...)
		flag := strings.TrimPrefix(strings.SplitN(args[0], "=", 2)[0], "--")
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("%v: got %v, %v; want an error naming %s", args, c, err, flag)
		}
	}
}

func buildCadvisorErr(t *testing.T, env collectors.Env, args ...string) (collectors.Collector, error) {
	t.Helper()
	app := kingpin.New("test", "")
	factory := collectortest.Lookup(t, "cadvisor").Setup(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	return factory(env)
}

// writeCgroup writes a cgroup directory atomically (staged, then renamed in)
// so that a concurrent walk never sees it half-written.
func writeCgroup(t *testing.T, stage, dst string, n int) {
	t.Helper()
	tmp, err := os.MkdirTemp(stage, "cg")
	if err != nil {
		t.Error(err)
		return
	}
	f := &fixture{}
	v := cgVals{n: n, weight: 10, pids: []int{n + 10}, io: true}
	for name, content := range f.cgroupFiles(v, false) {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(content), 0o644); err != nil {
			t.Error(err)
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Error(err)
	}
}

// TestCadvisorChurn creates and removes pods and containers while
// concurrent scrapes run through the Scraper: no error, no panic, no race
// (go test -race), and the descriptor budget does not leak.
func TestCadvisorChurn(t *testing.T) {
	t.Parallel()
	caseDir := filepath.Join("testdata", "cadvisor", "systemd-containerd")
	tree := prepareCase(t, caseDir)
	env, _ := caseEnv(t, caseDir, tree)
	c := buildCadvisor(t, env, "--collector.cadvisor.max-open-files=64")
	runChurn(t, c, filepath.Join(tree, "cgroup", "kubepods.slice", "kubepods-besteffort.slice"), t.TempDir(), true)
}

// TestCadvisorChurnKernel does the same on the kernel's cgroupfs, where a
// removed cgroup's open descriptors fail with ENODEV.
func TestCadvisorChurnKernel(t *testing.T) {
	t.Parallel()
	root := testCgroup(t, "churn")
	parent := filepath.Join(root, "kubepods.slice", "kubepods-besteffort.slice")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	c := buildCadvisor(t, collectors.Env{Logger: collectortest.Logger(t), Paths: collectors.Paths{CgroupFS: root}}, "--collector.cadvisor.max-open-files=64")
	runChurn(t, c, parent, "", false)
}

func runChurn(t *testing.T, c *cadvisorCollector, parent, stage string, files bool) {
	s, err := collectors.NewScraper([]collectors.Instance{{Name: "cadvisor", Layer: collectors.LayerCadvisor, Collector: c}},
		collectors.ScraperOptions{Timeout: 30 * time.Second, MaxConcurrency: 2, Logger: collectortest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Add(1)
	go func() {
		defer churn.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pod := filepath.Join(parent, fmt.Sprintf("kubepods-besteffort-pod%08d_0000_0000_0000_000000000000.slice", i%8))
			leaf := filepath.Join(pod, "cri-containerd-"+containerID(strconv.Itoa(i))+".scope")
			if i%3 == 2 {
				// Remove the pod with everything in it.
				if files {
					gone := filepath.Join(stage, fmt.Sprint("gone", i))
					if os.Rename(pod, gone) == nil {
						_ = os.RemoveAll(gone)
					}
				} else {
					entries, _ := os.ReadDir(pod)
					for _, e := range entries {
						if e.IsDir() {
							_ = os.Remove(filepath.Join(pod, e.Name()))
						}
					}
					_ = os.Remove(pod)
				}
				continue
			}
			if files {
				if _, err := os.Stat(pod); err != nil {
					writeCgroup(t, stage, pod, i)
				}
				writeCgroup(t, stage, leaf, i)
			} else {
				_ = os.Mkdir(pod, 0o755)
				_ = os.Mkdir(leaf, 0o755)
			}
		}
	}()
	var scrapes sync.WaitGroup
	for g := range 3 {
		scrapes.Add(1)
		go func() {
			defer scrapes.Done()
			for range 15 {
				mfs, err := s.Gather(time.Now().Add(30*time.Second), []string{"cadvisor"})
				if err != nil {
					t.Errorf("scraper %d: %v", g, err)
					return
				}
				for _, mf := range mfs {
					if mf.GetName() == "nodeagent_scrape_collector_success" && mf.GetMetric()[0].GetGauge().GetValue() != 1 {
						t.Errorf("scraper %d: the collector failed during churn", g)
					}
				}
			}
		}()
	}
	scrapes.Wait()
	close(stop)
	churn.Wait()
	// With the churn over, a last scrape holds descriptors only for the
	// cgroups that exist.
	if _, err := c.UpdateFamilies(context.Background()); err != nil {
		t.Errorf("after churn: %v", err)
	}
	if open, max := c.budget.Open(), 64; open > max {
		t.Errorf("budget holds %d descriptors, more than its %d", open, max)
	}
	c.mu.Lock()
	held := 0
	for _, st := range c.states {
		if _, err := os.Stat(st.group.Dir()); err != nil {
			t.Errorf("state kept for vanished cgroup %s", st.entry.Path)
		}
		held++
	}
	c.mu.Unlock()
	if held == 0 {
		t.Error("no cgroups left after churn")
	}
}

// testCgroup makes an empty cgroup for this test on the kernel's cgroup v2
// hierarchy (/sys/fs/cgroup/unified on a hybrid host) and removes it and
// its children at the end; it skips when not root or without cgroup2.
func testCgroup(t *testing.T, name string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	mount := cgroup2Mount()
	if mount == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	dir, err := os.MkdirTemp(mount, "nodeagent-test-"+name+"-")
	if err != nil {
		t.Skipf("cannot create a cgroup under %s: %v", mount, err)
	}
	t.Cleanup(func() { removeCgroupTree(dir) })
	return dir
}

// cgroup2Mount returns this machine's cgroup v2 hierarchy (the unified
// mount on a hybrid host), or "".
func cgroup2Mount() string {
	for _, m := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"} {
		if fs, err := cgroup.NewFS(m); err == nil && fs.Root() == m {
			if _, err := os.Stat(filepath.Join(m, "cgroup.controllers")); err == nil {
				return m
			}
		}
	}
	return ""
}

// removeCgroupTree removes a cgroup and its descendants, deepest first
// (cgroup directories are removed with rmdir, control files and all).
func removeCgroupTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeCgroupTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}

// TestCadvisorBusyChild is not a test: TestCadvisorRealKernel runs the test
// binary again with NODEAGENT_BUSY_CHILD=1 to have a process that burns CPU
// until it is killed (at most a minute).
func TestCadvisorBusyChild(t *testing.T) {
	if os.Getenv("NODEAGENT_BUSY_CHILD") != "1" {
		t.Skip("helper process for TestCadvisorRealKernel")
	}
	end := time.Now().Add(time.Minute)
	x := 0
	for time.Now().Before(end) {
		for i := range 1000000 {
			x += i
		}
	}
	fmt.Fprintln(os.Stderr, x)
}

// TestCadvisorRealKernel creates cgroups on this machine's cgroup v2
// hierarchy, moves a busy child process into one, and watches its CPU
// seconds grow in the collector's output. It needs no controller: on a
// hybrid host the unified hierarchy has cpu.stat and PSI files only, and
// the collector serves what is there without errors.
func TestCadvisorRealKernel(t *testing.T) {
	t.Parallel()
	root := testCgroup(t, "kernel")
	busy := filepath.Join(root, "system.slice", "busy.service")
	if err := os.MkdirAll(busy, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCadvisorBusyChild$")
	cmd.Env = append(os.Environ(), "NODEAGENT_BUSY_CHILD=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := os.WriteFile(filepath.Join(busy, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatalf("moving the child into %s: %v", busy, err)
	}

	c := buildCadvisor(t, collectors.Env{Logger: collectortest.Logger(t), Paths: collectors.Paths{CgroupFS: root}, Registerer: prometheus.NewRegistry()})
	id := "/system.slice/busy.service"
	read := func() (cpu, procs float64) {
		t.Helper()
		mfs, err := familyMap(t, c)
		if err != nil {
			t.Fatalf("scrape of the real hierarchy: %v", err)
		}
		m, ok := seriesFor(mfs, "container_cpu_usage_seconds_total", id)
		if !ok {
			t.Fatalf("%s not served", id)
		}
		p, ok := seriesFor(mfs, "container_processes", id)
		if !ok {
			t.Fatalf("container_processes of %s not served", id)
		}
		return m.GetCounter().GetValue(), p.GetGauge().GetValue()
	}
	first, procs := read()
	if procs != 1 {
		t.Errorf("container_processes = %v, want 1", procs)
	}
	// Wait for progress, not for a time: the child runs until it is killed.
	deadline := time.Now().Add(30 * time.Second)
	for {
		now, _ := read()
		if now > first {
			t.Logf("CPU seconds grew from %v to %v", first, now)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU seconds stayed at %v while a busy process ran in the cgroup", first)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCadvisorSpecRefresh checks that limit files are re-read every
// --collector.cadvisor.spec-refresh-interval, and usage files every scrape.
func TestCadvisorSpecRefresh(t *testing.T) {
	t.Parallel()
	caseDir := filepath.Join("testdata", "cadvisor", "bare-metal")
	tree := prepareCase(t, caseDir)
	env, _ := caseEnv(t, caseDir, tree)
	now := time.Unix(1782468900, 0)
	var mu sync.Mutex
	env.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	c := buildCadvisor(t, env, "--collector.cadvisor.spec-refresh-interval=1m")
	svc := filepath.Join(tree, "cgroup", "system.slice", "nginx.service")
	value := func(family string) float64 {
		t.Helper()
		mfs, err := familyMap(t, c)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := seriesFor(mfs, family, "/system.slice/nginx.service")
		if !ok {
			t.Fatalf("%s not served", family)
		}
		return valueOf(m)
	}
	if got := value("container_spec_memory_limit_bytes"); got != 0 {
		t.Fatalf("memory limit %v, want 0 (max)", got)
	}
	for name, content := range map[string]string{"memory.max": "1048576\n", "cpu.stat": "usage_usec 99000000\nuser_usec 1\nsystem_usec 1\n"} {
		if err := os.WriteFile(filepath.Join(svc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := value("container_cpu_usage_seconds_total"); got != 99 {
		t.Errorf("usage %v, want 99: usage files are read every scrape", got)
	}
	if got := value("container_spec_memory_limit_bytes"); got != 0 {
		t.Errorf("memory limit %v before the refresh interval, want the earlier 0", got)
	}
	advance(61 * time.Second)
	if got := value("container_spec_memory_limit_bytes"); got != 1048576 {
		t.Errorf("memory limit %v after the refresh interval, want 1048576", got)
	}
}

// TestCadvisorNetworkProcessGone: a sandbox whose process is gone from
// /proc (it exited; the cgroup still lists it until the next read) loses
// its network series without an error, and has them again once the pid
// is back, although its procfs handle is kept between scrapes.
func TestCadvisorNetworkProcessGone(t *testing.T) {
	t.Parallel()
	caseDir := filepath.Join("testdata", "cadvisor", "cgroupfs-containerd")
	tree := prepareCase(t, caseDir)
	env, _ := caseEnv(t, caseDir, tree)
	c := buildCadvisor(t, env)
	sandboxPath := "/kubepods/pod" + uidGuaranteed + "/" + containerID(uidGuaranteed+"/sandbox")
	procs, err := os.ReadFile(filepath.Join(tree, "cgroup", sandboxPath, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	pidDir := filepath.Join(tree, "proc", strings.Fields(string(procs))[0])

	for _, step := range []struct {
		name    string
		prepare func() error
		served  bool
	}{
		{"first scrape", func() error { return nil }, true},
		{"kept handle", func() error { return nil }, true},
		{"process gone", func() error { return os.Rename(pidDir, pidDir+".gone") }, false},
		{"process back", func() error { return os.Rename(pidDir+".gone", pidDir) }, true},
	} {
		if err := step.prepare(); err != nil {
			t.Fatal(err)
		}
		mfs, err := familyMap(t, c)
		if err != nil {
			t.Errorf("%s: %v", step.name, err)
		}
		if _, ok := seriesFor(mfs, "container_network_receive_bytes_total", sandboxPath); ok != step.served {
			t.Errorf("%s: network served %v, want %v", step.name, ok, step.served)
		}
		if _, ok := seriesFor(mfs, "container_cpu_user_seconds_total", sandboxPath); !ok {
			t.Errorf("%s: the sandbox's other series are gone", step.name)
		}
	}
}

// TestCadvisorHybridCPUAndPids: on a hybrid host whose v2 hierarchy lacks
// the cpu and pids controllers, the CPU limits and shares, the throttling
// counters and the thread counts come from the v1 cpu and pids
// hierarchies, and swap from the v1 memory hierarchy, valued as the
// kubelet's cAdvisor serves them there (the
// capture's pod e96d8e24: quota 10000, shares 102, 1.942194316 s
// throttled); a cgroup without a quota has no throttling series, and its
// v1 cpu.stat is not read after the first scrape.
func TestCadvisorHybridCPUAndPids(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	pod := "/kubepods/burstable/pod" + uidBurstable
	limited, free := pod+"/"+containerID("limited"), pod+"/"+containerID("free")
	files := map[string]string{
		"unified/cgroup.controllers":   "\n",
		"memory/memory.usage_in_bytes": "1\n",
		"cpu/cpu.shares":               "1024\n",
		"pids/tasks":                   "1\n",
	}
	for _, p := range []string{"", "/kubepods", "/kubepods/burstable", pod, limited, free} {
		files["unified"+p+"/cgroup.procs"] = "1\n"
		files["unified"+p+"/cpu.stat"] = "usage_usec 7\nuser_usec 4\nsystem_usec 3\n"
		files["cpu"+p+"/cpu.shares"] = "1024\n"
		files["cpu"+p+"/cpu.cfs_quota_us"] = "-1\n"
		files["cpu"+p+"/cpu.cfs_period_us"] = "100000\n"
		files["cpu"+p+"/cpu.stat"] = "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n"
		if p != "" {
			files["pids"+p+"/pids.current"] = "1\n"
			files["pids"+p+"/pids.max"] = "max\n"
		}
	}
	files["cpu"+limited+"/cpu.shares"] = "102\n"
	files["cpu"+limited+"/cpu.cfs_quota_us"] = "10000\n"
	files["cpu"+limited+"/cpu.stat"] = "nr_periods 61\nnr_throttled 20\nthrottled_time 1942194316\nnr_bursts 0\nburst_time 0\n"
	files["pids"+limited+"/pids.current"] = "7\n"
	files["pids/kubepods/pids.max"] = "32768\n"
	files["memory"+limited+"/memory.usage_in_bytes"] = "1048576\n"
	files["memory"+limited+"/memory.stat"] = "total_rss 1048576\ntotal_swap 8192\n"
	files["memory"+limited+"/memory.memsw.limit_in_bytes"] = "50331648\n"
	for name, content := range files {
		writeFile(t, filepath.Join(base, name), content)
	}
	c := buildCadvisor(t, collectors.Env{Logger: collectortest.Logger(t), Paths: collectors.Paths{CgroupFS: filepath.Join(base, "unified"), ProcFS: t.TempDir()}})
	mfs, err := familyMap(t, c)
	if err != nil {
		t.Fatal(err)
	}
	value := func(family, id string) (float64, bool) {
		m, ok := seriesFor(mfs, family, id)
		return m.GetCounter().GetValue() + m.GetGauge().GetValue(), ok
	}
	for _, w := range []struct {
		family, id string
		want       float64
	}{
		{"container_spec_cpu_quota", limited, 10000},
		{"container_spec_cpu_period", limited, 100000},
		{"container_spec_cpu_shares", limited, 102},
		{"container_spec_cpu_shares", "/", 1024},
		{"container_spec_cpu_period", free, 100000},
		{"container_cpu_cfs_periods_total", limited, 61},
		{"container_cpu_cfs_throttled_periods_total", limited, 20},
		{"container_cpu_cfs_throttled_seconds_total", limited, 1.942194316},
		{"container_cpu_cfs_burst_periods_total", limited, 0},
		{"container_cpu_usage_seconds_total", limited, 7e-6},
		{"container_threads", limited, 7},
		{"container_threads_max", limited, 0}, // max, as cAdvisor serves no limit
		{"container_threads_max", "/kubepods", 32768},
		{"container_memory_swap", limited, 8192},
		{"container_spec_memory_swap_limit_bytes", limited, 50331648},
	} {
		if got, ok := value(w.family, w.id); !ok || got != w.want {
			t.Errorf("%s{id=%q} = %v (served: %v), want %v", w.family, w.id, got, ok, w.want)
		}
	}
	for _, family := range []string{"container_spec_cpu_quota", "container_cpu_cfs_periods_total", "container_cpu_cfs_throttled_seconds_total"} {
		if _, ok := seriesFor(mfs, family, free); ok {
			t.Errorf("%s served for %s, which has no quota", family, free)
		}
	}

	// After the first scrape a cgroup without a quota does not read its v1
	// cpu.stat, and gives its descriptor back: a malformed one there is no
	// error. The limited one still reads its own, so the throttling it
	// counts meanwhile is served.
	kept := c.budget.Open()
	if err := os.WriteFile(filepath.Join(base, "cpu"+free, "cpu.stat"), []byte("nr_periods x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "cpu"+limited, "cpu.stat"), []byte("nr_periods 62\nnr_throttled 21\nthrottled_time 2000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if mfs, err = familyMap(t, c); err != nil {
		t.Fatalf("second scrape: %v", err)
	}
	if got, _ := value("container_cpu_cfs_throttled_periods_total", limited); got != 21 {
		t.Errorf("throttled periods on the second scrape %v, want 21", got)
	}
	// The root, kubepods, its QoS cgroup, the pod and the free container.
	if got := kept - c.budget.Open(); got != 5 {
		t.Errorf("%d descriptors given back after the second scrape, want 5 (the v1 cpu.stat of each cgroup without a quota)", got)
	}
}
