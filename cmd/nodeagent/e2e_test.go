package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/collectortest"
	"github.com/nodeagent/nodeagent/internal/fakekubelet"
	"github.com/nodeagent/nodeagent/internal/quotacgroup"
	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent"
)

var listeningRE = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// buildBinary builds cmd/nodeagent once per test into a temporary
// directory, with a plain go build as a user would: no -ldflags, and the
// toolchain's default VCS stamping even where GOFLAGS turns it off.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nodeagent")
	out, err := exec.Command("go", "build", "-buildvcs=auto", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs the built binary on a 127.0.0.1 port and returns its
// base URL once it is ready.
func startBinary(t *testing.T, bin string, args ...string) string {
	t.Helper()
	base, _, _ := startBinaryProc(t, bin, args...)
	return base
}

// startBinaryProc is startBinary returning the process ID and its log
// (as written so far; it keeps growing) too.
func startBinaryProc(t *testing.T, bin string, args ...string) (string, int, *testlog.Buffer) {
	t.Helper()
	return startCommand(t, exec.Command(bin, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...))
}

// startBinaryUnderQuota is startBinary with the agent started in a
// cgroup that grants it cpus CPUs; it skips the test where no such cgroup
// can be made (not root, no cpu controller).
func startBinaryUnderQuota(t *testing.T, cpus float64, bin string, args ...string) (string, *testlog.Buffer) {
	t.Helper()
	cg, err := quotacgroup.New(cpus)
	if errors.Is(err, quotacgroup.ErrUnsupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// After the agent's own cleanup (registered later, run first).
		if err := cg.Remove(); err != nil {
			t.Errorf("removing %s: %v", cg.Dir(), err)
		}
	})
	base, _, logs := startCommand(t, cg.Command(bin, append([]string{"--web.listen-address=127.0.0.1:0"}, args...)...))
	return base, logs
}

// startCommand starts cmd, an agent listening on 127.0.0.1:0, and returns
// its base URL once it is ready, its process ID and its log.
func startCommand(t *testing.T, cmd *exec.Cmd) (string, int, *testlog.Buffer) {
	t.Helper()
	// The goldens name their kubelet with --kubelet.url: keep a NODE_IP or NODE_NAME of the
	// machine running the tests out.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NODE_IP=") && !strings.HasPrefix(kv, "NODE_NAME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	addr := make(chan string, 1)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			_, _ = logs.Write([]byte(sc.Text() + "\n"))
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		// SIGTERM, as the kubelet and systemd send: a graceful exit is code 0.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-scanned
		if err := cmd.Wait(); err != nil {
			t.Errorf("nodeagent did not exit cleanly on SIGTERM: %v", err)
		}
		if t.Failed() {
			t.Logf("nodeagent log:\n%s", logs.String())
		}
	})
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case <-time.After(60 * time.Second):
		t.Fatal("nodeagent did not start listening")
	}
	waitUntil(t, func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return base, cmd.Process.Pid, logs
}

// volatileRE matches series whose values change from run to run or from
// host to host (the clock, when each path was last scraped and the
// kubelet last checked, the kernel's
// uname and clock discipline, the host's os-release, cgroup directory
// mtimes that a checkout sets, the collection time of container_last_seen,
// how many runs the warm-up collection and the first scrapes happened to
// share, the build's labels on the build info families); the golden
// comparison leaves them out, as node_exporter's end-to-end test does.
var volatileRE = regexp.MustCompile(`^(go_|process_|nodeagent_build_info|node_exporter_build_info|nodeagent_last_scrape_timestamp_seconds|nodeagent_kubelet_readonly_port_last_check_timestamp_seconds|nodeagent_kubelet_anonymous_auth_last_check_timestamp_seconds|nodeagent_scrape_collector_duration_seconds|nodeagent_scrape_requests_total|nodeagent_scrape_collector_runs_total|node_time_seconds|node_time_zone_offset_seconds|node_timex_|node_uname_info|node_os_|container_start_time_seconds|container_creation_time_seconds|container_last_seen)`)

func stable(body string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(body, "\n") {
		name := strings.TrimPrefix(strings.TrimPrefix(line, "# HELP "), "# TYPE ")
		if !volatileRE.MatchString(name) {
			b.WriteString(line)
		}
	}
	return b.String()
}

// e2eNode is the composite node of testdata/e2e-node: the host fixture
// with the container fixture's cgroups and pod network namespaces.
const e2eNode = "testdata/e2e-node"

// e2eArgs run the binary over the e2e node with a fake kubelet that serves
// the container fixture's pods, so that every layer is on and the
// container series carry their pod labels. kube-proxy and the container
// runtime are turned off: whether something listens at their default
// addresses depends on the machine running the tests.
func e2eArgs(t *testing.T) []string {
	t.Helper()
	k := fakekubelet.New(t)
	pods, err := os.ReadFile("../../collectors/cadvisor/testdata/cadvisor/systemd-containerd/pods.json")
	if err != nil {
		t.Fatal(err)
	}
	k.Handle("/pods", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(pods)
	})
	return append(kubeletArgs(k),
		"--path.procfs="+e2eNode+"/proc",
		"--path.sysfs="+e2eNode+"/sys",
		"--path.rootfs="+e2eNode+"/root",
		"--path.udev.data="+e2eNode+"/udev",
		"--path.cgroupfs="+e2eNode+"/cgroup",
		// Fixture data, not the machine's: netlink reads the network
		// namespace the test runs in, whatever --path.procfs says.
		"--no-collector.arp.netlink",
		"--no-collector.netdev.netlink",
		"--no-collector.kube-proxy",
		"--no-collector.runtime",
		// A closed read-only port of its own: the default, 10255 on the
		// machine, may have a kubelet behind it.
		fmt.Sprintf("--kubelet.readonly-port=%d", fakekubelet.ClosedPort(t)),
		// The sandboxes' image, which the kubelet's /pods does not name.
		"--collector.cadvisor.sandbox-image=registry.k8s.io/pause:3.10.1",
		"--log.level=debug",
	)
}

// TestEndToEnd is the exposition lint of `make test`: the built binary
// runs over the fixture tree, every endpoint passes its own check-metrics
// subcommand, and each endpoint's stable part equals its golden file in
// testdata/e2e (go test -run TestEndToEnd -update rewrites them).
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; make test runs it without -short")
	}
	bin := buildBinary(t)
	base := startBinary(t, bin, e2eArgs(t)...)
	for _, path := range []string{"/metrics", "/metrics/node", "/metrics/cadvisor", "/metrics/nodeagent", "/metrics/kubelet", "/metrics/probes", "/metrics/slis"} {
		t.Run(path, func(t *testing.T) {
			code, body := get(t, nil, base+path)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			check := exec.Command(bin, "check-metrics")
			check.Stdin = strings.NewReader(body)
			if out, err := check.CombinedOutput(); err != nil {
				t.Errorf("check-metrics on %s: %v\n%s", path, err, out)
			}
			// Left out of the golden as a build property, but served: the
			// node-mixin dashboards list instances by it.
			if (path == "/metrics" || path == "/metrics/node") && !strings.Contains(body, "\nnode_exporter_build_info{") {
				t.Errorf("%s serves no node_exporter_build_info", path)
			}
			// Left out of the golden with the checkout's mtimes, but held
			// to each other: both are the cgroup's creation time.
			if path == "/metrics/cadvisor" {
				mfs := families(t, body)
				start, created := collectortest.Series(mfs["container_start_time_seconds"]), collectortest.Series(mfs["container_creation_time_seconds"])
				if len(start) == 0 || !maps.Equal(start, created) {
					t.Errorf("container_creation_time_seconds %v, want container_start_time_seconds %v", created, start)
				}
			}
			golden := filepath.Join("testdata", "e2e", strings.ReplaceAll(strings.Trim(path, "/"), "/", "_")+".prom")
			got := stable(body)
			if collectortest.Updating() {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s differs from %s (-want +got):\n%s", path, golden, diff)
			}
		})
	}
	t.Run("landing page", func(t *testing.T) {
		page := checkLandingLinks(t, nil, base)
		if want := "Version: (version=" + nodeagent.Version(); !strings.Contains(page, want) {
			t.Errorf("landing page lacks %q", want)
		}
	})
	t.Run("version", func(t *testing.T) { checkPlainBuildVersion(t, bin, base) })
	t.Run("GOMAXPROCS", func(t *testing.T) {
		// With the cadvisor collector Go chooses (as it does for this
		// test, unless GOMAXPROCS is set for both); without it, one.
		if want := runtime.GOMAXPROCS(0); gomaxprocsOf(t, base) != want {
			t.Errorf("with the cadvisor collector: GOMAXPROCS %d, want Go's %d", gomaxprocsOf(t, base), want)
		}
		given := startBinary(t, bin, append(e2eArgs(t), "--gomaxprocs=3")...)
		if got := gomaxprocsOf(t, given); got != 3 {
			t.Errorf("--gomaxprocs=3: GOMAXPROCS %d", got)
		}
		if os.Getenv("GOMAXPROCS") != "" {
			t.Skip("GOMAXPROCS is set in the environment, which the agent follows")
		}
		hostOnly := startBinary(t, bin, append(e2eArgs(t), "--no-collector.cadvisor")...)
		if got := gomaxprocsOf(t, hostOnly); got != 1 {
			t.Errorf("without the cadvisor collector: GOMAXPROCS %d, want 1", got)
		}
	})
	t.Run("gzip in chunks", func(t *testing.T) {
		// Over the container fixture with 400 more cgroups (copies of
		// containerd.service's), /metrics/cadvisor is ~3 MB of text:
		// with two threads (--web.parallel-gzip, the default) it is
		// written and compressed in chunks, each but the last ended by
		// a sync flush (an empty stored block, 00 00 ff ff), into one
		// member; on one thread, with --web.reuse-unchanged (the
		// default), in pieces too, a family each, so that those that
		// hold still are spliced from the third answer on; without
		// either, in one stream, which has no such block. All decode
		// whole as one member, also with curl, which stops after the
		// first member of several.
		args, cgroups := largeCadvisorArgs(t, e2eArgs(t), 400)
		args = append(args, "--gomaxprocs=2")
		// fetch reads the gzip answer at url as one member.
		fetch := func(t *testing.T, url string) (raw, text []byte) {
			t.Helper()
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept-Encoding", "gzip") // set here, so the client leaves the answer compressed
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip" {
				t.Fatalf("%s: status %d, Content-Encoding %q, %v", url, resp.StatusCode, resp.Header.Get("Content-Encoding"), err)
			}
			br := bytes.NewReader(raw)
			zr, err := gzip.NewReader(br)
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false)
			text, err = io.ReadAll(zr)
			if err != nil || br.Len() != 0 {
				t.Fatalf("%s: %d bytes of text from the first gzip member (%v), %d bytes after it", url, len(text), err, br.Len())
			}
			return raw, text
		}
		splicedRE := regexp.MustCompile(`(?m)^nodeagent_exposition_gzip_families_total\{outcome="spliced"\} (\d+)$`)
		for i, tc := range []struct {
			args   []string
			chunks bool // compressed in pieces: chunks, or with reuse families
			reuse  bool
		}{
			{nil, true, true},
			{[]string{"--no-web.parallel-gzip"}, true, true},
			{[]string{"--no-web.parallel-gzip", "--no-web.reuse-unchanged"}, false, false},
		} {
			base := startBinary(t, bin, append(slices.Clone(args), tc.args...)...)
			url := base + "/metrics/cadvisor"
			// Three answers: with reuse the third splices the families
			// that held still.
			for range 3 {
				raw, text := fetch(t, url)
				if !strings.Contains(string(text), `id="/system.slice/extra-399.service"`) ||
					!strings.Contains(string(text), "\nnodeagent_scrape_collector_success{") || !strings.HasSuffix(string(text), "\n") {
					t.Errorf("%v: %d bytes of text, not the whole answer", tc.args, len(text))
				}
				if len(text) < 2<<20 {
					t.Fatalf("%v: %d bytes of text, too few for chunks", tc.args, len(text))
				}
				if flushed := bytes.Contains(raw, []byte{0, 0, 0xff, 0xff}); flushed != tc.chunks {
					t.Errorf("%v: %d bytes of text compressed with a sync flush: %t, want %t", tc.args, len(text), flushed, tc.chunks)
				}
			}
			status, self := get(t, http.DefaultClient, base+"/metrics/nodeagent")
			if status != http.StatusOK {
				t.Fatalf("/metrics/nodeagent: status %d", status)
			}
			m := splicedRE.FindStringSubmatch(self)
			switch {
			case tc.reuse && (m == nil || m[1] == "0"):
				t.Errorf("%v: after three answers, %q: want families spliced", tc.args, m)
			case !tc.reuse && m != nil:
				t.Errorf("%v: %s without reuse", tc.args, m[0])
			}
			// A counter that moves is in the next answer, its family
			// written again rather than spliced.
			usage := 2012351 + 1000*(i+1)
			if err := os.WriteFile(filepath.Join(cgroups, "system.slice", "extra-000.service", "cpu.stat"),
				fmt.Appendf(nil, "usage_usec %d\nuser_usec 1341567\nsystem_usec 670784\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n", usage), 0o644); err != nil {
				t.Fatal(err)
			}
			_, text := fetch(t, url)
			moved := regexp.MustCompile(`(?m)^container_cpu_usage_seconds_total\{[^}]*id="/system\.slice/extra-000\.service"[^}]*\} (\S+)$`).FindSubmatch(text)
			if want := strconv.FormatFloat(float64(usage)/1e6, 'g', -1, 64); moved == nil || string(moved[1]) != want {
				t.Errorf("%v: after cpu.stat moved to %d µs, the next answer has %q, want %s", tc.args, usage, moved, want)
			}
			curl, err := exec.LookPath("curl")
			if err != nil {
				t.Log("no curl to read the answer as an operator would")
				continue
			}
			out, err := exec.Command(curl, "-sS", "--compressed", url).Output()
			if err != nil || !bytes.HasSuffix(out, []byte("\n")) || len(out) < len(text)*9/10 {
				t.Errorf("%v: curl --compressed read %d bytes (%v), the answer holds ~%d", tc.args, len(out), err, len(text))
			}
		}
	})
	t.Run("GOMAXPROCS under a CPU quota", func(t *testing.T) {
		// Under the DaemonSet's 500m limit Go would run two threads
		// (it rounds a quota up, to at least 2); the agent runs the one
		// the quota grants, and logs why. Under 1.5 CPUs, one too.
		if os.Getenv("GOMAXPROCS") != "" {
			t.Skip("GOMAXPROCS is set in the environment, which the agent follows")
		}
		for _, tc := range []struct {
			cpus float64
			want int
		}{{0.5, 1}, {1.5, 1}} {
			base, logs := startBinaryUnderQuota(t, tc.cpus, bin, e2eArgs(t)...)
			if got := gomaxprocsOf(t, base); got != tc.want {
				t.Errorf("under a quota of %v CPUs: GOMAXPROCS %d, want %d", tc.cpus, got, tc.want)
			}
			if !strings.Contains(logs.String(), `msg="GOMAXPROCS set" value=1 why="the CPU quota of the agent's cgroup`) {
				t.Errorf("no line about the quota in the log:\n%s", logs.String())
			}
		}
	})
	t.Run("startup pages", func(t *testing.T) {
		// After its first answer the agent unmaps the executable's pages
		// that only start-up read, and scrapes map back only what they
		// use; with --no-release-startup-pages they stay.
		released, releasedPID, logs := startBinaryProc(t, bin, e2eArgs(t)...)
		kept, keptPID, _ := startBinaryProc(t, bin, append(e2eArgs(t), "--no-release-startup-pages")...)
		scrape := func(base string) {
			t.Helper()
			for range 3 {
				if code, _ := get(t, nil, base+"/metrics"); code != http.StatusOK {
					t.Fatalf("%s/metrics: status %d", base, code)
				}
			}
		}
		scrape(released)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), "start-up pages") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), "released the executable's start-up pages") {
			t.Fatalf("no line about the release in the log:\n%s", logs.String())
		}
		scrape(released)
		scrape(kept)
		scrape(kept)
		rssFile := func(pid int) uint64 {
			t.Helper()
			proc, err := procfs.NewProc(pid)
			if err != nil {
				t.Fatal(err)
			}
			st, err := proc.NewStatus()
			if err != nil {
				t.Fatal(err)
			}
			return st.RssFile
		}
		r, k := rssFile(releasedPID), rssFile(keptPID)
		t.Logf("resident file pages after 6 scrapes of every layer: %d kB released, %d kB kept", r>>10, k>>10)
		if r+1<<20 > k {
			t.Errorf("resident file pages after 6 scrapes: %d kB released, %d kB kept; want 1 MiB fewer released", r>>10, k>>10)
		}
	})
	t.Run("heap profile", func(t *testing.T) {
		// Each sampled allocation from a stack not seen before adds a
		// record to the runtime's profiling buckets. Sampling stops
		// without pprof, after what the packages' init functions
		// allocated; with it, scrapes keep adding stacks.
		if strings.Contains(os.Getenv("GODEBUG"), "memprofilerate=") {
			t.Skip("GODEBUG sets memprofilerate, which the agent follows")
		}
		profiled := startBinary(t, bin, append(e2eArgs(t), "--debug.pprof-address=127.0.0.1:0")...)
		for _, tc := range []struct {
			base string
			grow bool
		}{{base, false}, {profiled, true}} {
			before := selfGauge(t, tc.base, "go_memstats_buck_hash_sys_bytes")
			for range 10 {
				if code, _ := get(t, nil, tc.base+"/metrics"); code != http.StatusOK {
					t.Fatalf("%s/metrics: status %d", tc.base, code)
				}
			}
			after := selfGauge(t, tc.base, "go_memstats_buck_hash_sys_bytes")
			if grew := after > before; grew != tc.grow {
				t.Errorf("profiling buckets %.0f bytes before 10 scrapes, %.0f after; want growth %v (pprof served: %v)", before, after, tc.grow, tc.grow)
			}
		}
	})
}

// gomaxprocsOf is the agent's go_sched_gomaxprocs_threads.
func gomaxprocsOf(t *testing.T, base string) int {
	return int(selfGauge(t, base, "go_sched_gomaxprocs_threads"))
}

// selfGauge is the value of the agent's own gauge name on
// /metrics/nodeagent.
func selfGauge(t *testing.T, base, name string) float64 {
	t.Helper()
	code, body := get(t, nil, base+"/metrics/nodeagent")
	if code != http.StatusOK {
		t.Fatalf("/metrics/nodeagent: status %d", code)
	}
	m, ok := collectortest.Parse(t, []byte(body))[name]
	if !ok || len(m.GetMetric()) != 1 {
		t.Fatalf("no %s on /metrics/nodeagent", name)
	}
	return m.GetMetric()[0].GetGauge().GetValue()
}

// checkPlainBuildVersion checks that a plain go build knows its version
// (the VERSION file) and, when the toolchain stamped the build (not in a
// linked git worktree, golang/go#58218), its revision and commit time, in
// --version and in nodeagent_build_info.
func checkPlainBuildVersion(t *testing.T, bin, base string) {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, out)
	}
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	revision := "unknown" // prometheus/common's word for no stamp
	if rev := vcs["vcs.revision"]; rev != "" {
		revision = rev
		if vcs["vcs.modified"] == "true" {
			revision += "-modified"
		}
		if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil && strings.TrimSpace(string(head)) != rev {
			t.Errorf("vcs.revision %s, git HEAD %s", rev, head)
		}
	} else {
		t.Logf("the toolchain stamped no VCS information (a linked git worktree, or no git); revision and date are checked by TestCompleteVersion only")
	}
	want := []string{
		fmt.Sprintf("nodeagent, version %s (branch: , revision: %s)", nodeagent.Version(), revision),
		"build date:       " + vcs["vcs.time"] + "\n",
	}
	for _, w := range want {
		if !strings.Contains(string(out), w) {
			t.Errorf("--version lacks %q:\n%s", w, out)
		}
	}
	_, metrics := get(t, nil, base+"/metrics/nodeagent")
	info := regexp.MustCompile(`(?m)^nodeagent_build_info\{.*\} 1$`).FindString(metrics)
	for _, w := range []string{`version="` + nodeagent.Version() + `"`, `revision="` + revision + `"`} {
		if !strings.Contains(info, w) {
			t.Errorf("nodeagent_build_info lacks %s: %q", w, info)
		}
	}
	if nodeagent.Version() == "" {
		t.Error("the VERSION file is empty")
	}
}

// largeCadvisorArgs returns args (e2eArgs') with the container fixture
// grown by extra cgroups, copies of containerd.service's, all served
// (each adds ~7 KB of text to /metrics/cadvisor), and the grown tree.
func largeCadvisorArgs(t *testing.T, args []string, extra int) (_ []string, cgroups string) {
	t.Helper()
	fixture, err := filepath.EvalSymlinks(e2eNode + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	// On a tmpfs where there is one: thousands of files take seconds
	// to write on a virtual machine's disk.
	cgroups = filepath.Join(tmpfsDir(t), "cgroup")
	if err := os.CopyFS(cgroups, os.DirFS(fixture)); err != nil {
		t.Fatal(err)
	}
	service := filepath.Join(cgroups, "system.slice", "containerd.service")
	for i := range extra {
		if err := os.CopyFS(filepath.Join(cgroups, "system.slice", fmt.Sprintf("extra-%03d.service", i)), os.DirFS(service)); err != nil {
			t.Fatal(err)
		}
	}
	args = slices.DeleteFunc(slices.Clone(args), func(a string) bool { return strings.HasPrefix(a, "--path.cgroupfs=") })
	// With a kubelet only its service is served outside kubepods.
	return append(args, "--path.cgroupfs="+cgroups, `--collector.cadvisor.host-cgroups=/system\.slice/.*`), cgroups
}

// tmpfsDir is a directory for the test on /dev/shm, removed after it, or
// where /dev/shm cannot be written, the test's temporary directory.
func tmpfsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "nodeagent-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
