// Command perf measures nodeagent side by side with its peers, as
// docs/performance.md reports it (make perf):
//
//   - the host layer: nodeagent's /metrics/node against node_exporter's
//     /metrics on this host, same collectors, scraped as Prometheus scrapes
//     (text, gzip), in alternating blocks so that both see the same noise:
//     process CPU per scrape from /proc/<pid>/stat, wall time per scrape,
//     resident memory after the scrapes;
//   - the container layer: nodeagent's /metrics/cadvisor over generated
//     cgroup trees of growing size (collectors/cadvisor's benchmark node,
//     written by its TestWriteBenchTree), to show that the cost grows
//     linearly: CPU per scrape and per series, wall time, bytes sent, RSS;
//     with --baseline, another build beside it over the same trees,
//     scraped in interleaved blocks, and the ratio of the two (with
//     --tree-args and --baseline-args, one build with and without a
//     setting);
//   - with --kubelet-env (make perf-kubelet), the container layer against
//     a real kubelet: nodeagent's /metrics/cadvisor beside the kubelet's
//     own on the test cluster's node (test/cluster), in alternating blocks
//     with a quiet interval for the kubelet's idle CPU: CPU per scrape and
//     per series of each side, series, RSS.
//
// It prints Markdown tables with the load average before and after each
// part. Timing is the machine's: compare the ratios, not the numbers.
package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/nodeagent/nodeagent/internal/quotacgroup"
)

// Prometheus 3's Accept for a target without OpenMetrics, as neither side
// here offers it, and the encoding it asks for.
const (
	acceptHeader         = "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
	acceptEncodingHeader = "gzip"
	// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
	// every Linux architecture nodeagent is built for.
	clockTicks = 100

	// nodeagent's defaults where they differ from node_exporter's
	// (collectors/node/network/netdev.go, collectors/node/storage/filesystem.go).
	cniDevices         = `^(veth|cali|cilium|lxc|flannel|cni|tunl)`
	mountPointsExclude = `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+|var/lib/kubelet/pods/.+|run/containerd/.+|run/k3s/containerd/.+)($|/)`
)

func main() {
	var (
		nodeagent     = flag.String("nodeagent", "bin/nodeagent", "the nodeagent binary")
		nodeExporter  = flag.String("node-exporter", "", "the node_exporter binary (v1.12.1); the host comparison is skipped without it")
		scrapes       = flag.Int("scrapes", 400, "scrapes per side and round of the host comparison")
		nodeagentArgs = flag.String("nodeagent-args", "", "more flags for nodeagent in the host comparison, separated by spaces (to measure a setting)")
		neArgs        = flag.String("node-exporter-args", "", "more flags for node_exporter in the host comparison, separated by spaces (--no-collector.netdev.netlink with --nodeagent-args=--no-collector.netdev.netlink compares the /proc/net/dev mode)")
		rounds        = flag.Int("rounds", 3, "rounds of the host comparison")
		containers    = flag.String("containers", "250,500,1000,2000", "container counts of the generated trees (rounded up to pods of 4)")
		treeScrapes   = flag.Int("tree-scrapes", 20, "scrapes of each generated tree")
		treeDir       = flag.String("tree-dir", "/dev/shm", "where the generated trees are written (a tmpfs keeps disk I/O out)")
		baseline      = flag.String("baseline", "", "another nodeagent build to compare over the generated trees: both are scraped over each tree, interleaved in blocks, so that both see the same noise")
		treeArgs      = flag.String("tree-args", "", "more flags for --nodeagent over the generated trees, separated by spaces")
		treeQuota     = flag.Float64("tree-quota", 0, "run each nodeagent over the generated trees in a cgroup of its own with this CPU quota, in CPUs (0.5: the DaemonSet's 500m limit and the unit's CPUQuota=50%); needs root and a cpu controller")
		baselineArgs  = flag.String("baseline-args", "", "more flags for --baseline over the generated trees, separated by spaces (the same build twice with and without a setting measures the setting)")
		kubeletEnv    = flag.String("kubelet-env", "", "the test cluster's env file (/tmp/nodeagent-cluster/env): compare /metrics/cadvisor with that kubelet's")
		ko            kubeletOptions
	)
	flag.StringVar(&ko.auth, "kubelet-auth", "token", "how the kubelet is scraped: token (KUBELET_TOKEN_FILE, as Prometheus does) or cert (the harness's client certificate)")
	flag.IntVar(&ko.rounds, "kubelet-rounds", 6, "rounds of the comparison with the kubelet")
	flag.IntVar(&ko.scrapes, "kubelet-scrapes", 30, "scrapes per side and round of the comparison with the kubelet")
	kubeletArgs := flag.String("kubelet-nodeagent-args", "", "more flags for nodeagent in the comparison with the kubelet, separated by spaces")
	flag.Float64Var(&ko.quota, "kubelet-quota", 0.5, "run nodeagent in the comparison with the kubelet in a cgroup of its own with this CPU quota, in CPUs, as the DaemonSet's 500m limit does (0: none); needs root and a cpu controller")
	flag.BoolVar(&ko.plain, "kubelet-nodeagent-plain", false, "serve nodeagent in the comparison with the kubelet over plain HTTP without authentication, instead of as the DaemonSet serves it (TLS and --web.kubernetes-auth, when the env file has an API server's KUBECONFIG)")
	flag.DurationVar(&ko.settle, "kubelet-settle", 3*time.Minute, "at most this long for both answers' series counts to settle first")
	flag.Parse()
	fmt.Printf("# make perf, %s\n\n%d CPUs, %s, %s/%s\n\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	// How each binary was built shows in its resident memory: a
	// dynamically linked one maps the C library too.
	for _, bin := range []string{*nodeagent, *baseline, *nodeExporter} {
		if bin == "" {
			continue
		}
		d, err := describeBinary(bin)
		if err != nil {
			fail(err)
		}
		fmt.Printf("- %s: %s\n", bin, d)
	}
	fmt.Println()
	if *nodeExporter != "" {
		if err := host(*nodeagent, *nodeExporter, strings.Fields(*nodeagentArgs), strings.Fields(*neArgs), *scrapes, *rounds); err != nil {
			fail(err)
		}
	}
	if *kubeletEnv != "" {
		ko.envFile = *kubeletEnv
		ko.args = strings.Fields(*kubeletArgs)
		if err := kubeletCompare(*nodeagent, ko); err != nil {
			fail(err)
		}
	}
	if *containers != "" {
		var counts []int
		for _, s := range strings.Split(*containers, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n <= 0 {
				fail(fmt.Errorf("--containers: %q is not a positive number", s))
			}
			counts = append(counts, n)
		}
		if err := containerTrees(treeBuild{*nodeagent, strings.Fields(*treeArgs)}, treeBuild{*baseline, strings.Fields(*baselineArgs)}, *treeQuota, *treeDir, counts, *treeScrapes); err != nil {
			fail(err)
		}
	}
}

// describeBinary says how the Go binary at path was built: linked
// statically or not, its Go version, and its cgo and -trimpath settings.
func describeBinary(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	linking := "static"
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			linking = "dynamically linked"
		}
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	d := fmt.Sprintf("%s, %s, CGO_ENABLED=%s", linking, bi.GoVersion, settings["CGO_ENABLED"])
	if settings["-trimpath"] == "true" {
		d += ", -trimpath"
	}
	return d, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "perf:", err)
	os.Exit(1)
}

// process is a started exporter, or a running one that was found
// (cmd nil, pid set).
type process struct {
	name   string
	cmd    *exec.Cmd
	pid    int
	url    string
	client *http.Client // nil: client
}

// start runs bin with args on a free loopback port (listenFlag=host:port)
// and waits until url answers 200.
func start(name, bin, listenFlag, path string, args ...string) (*process, error) {
	return startWith(exec.Command, name, bin, listenFlag, path, args...)
}

// startWith is start with the command made by command (in a cgroup, say).
func startWith(command func(string, ...string) *exec.Cmd, name, bin, listenFlag, path string, args ...string) (*process, error) {
	return launch(command, nil, name, bin, listenFlag, path, args...)
}

// launch is startWith for a process served over HTTPS and asked with c
// when c is not nil.
func launch(command func(string, ...string) *exec.Cmd, c *http.Client, name, bin, listenFlag, path string, args ...string) (*process, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := command(bin, append([]string{listenFlag + "=" + addr}, args...)...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	p := &process{name: name, cmd: cmd, pid: cmd.Process.Pid, url: "http://" + addr + path, client: c}
	get := http.Get
	if c != nil {
		p.url = "https://" + addr + path
		get = c.Get
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := get(p.url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not answer %s within a minute: %v", bin, p.url, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *process) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// cpuTicks is the process's user+system time in clock ticks.
func (p *process) cpuTicks() (int, error) {
	u, s, err := p.cpuSplit()
	return u + s, err
}

// cpuSplit is the process's user and system time in clock ticks.
func (p *process) cpuSplit() (user, system int, err error) {
	path := fmt.Sprintf("/proc/%d/stat", p.pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("reading %s: %w", path, err)
	}
	// The command name may hold spaces; fields start after its ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("%s: no command name", path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("%s: %d fields", path, len(f))
	}
	// utime and stime are fields 14 and 15 of the whole line.
	u, err1 := strconv.Atoi(f[11])
	s, err2 := strconv.Atoi(f[12])
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return u, s, nil
}

// rssMiB is the process's resident memory.
func (p *process) rssMiB() (float64, error) {
	path := fmt.Sprintf("/proc/%d/status", p.pid)
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kib, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				return 0, fmt.Errorf("%s: VmRSS %q: %w", path, v, err)
			}
			return float64(kib) / 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS: %w", path, sc.Err())
}

var client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableCompression: true}}

// scrape gets url as Prometheus does and returns the bytes received.
func scrape(url string) (int64, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("Accept-Encoding", acceptEncodingHeader)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return n, fmt.Errorf("reading %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return n, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return n, nil
}

// series counts the samples of one gzip-encoded text scrape of url.
func series(url string) (int, error) {
	k, err := seriesKeys(url)
	return len(k), err
}

// seriesKeys are the series (name and labels) of one gzip-encoded text
// scrape of url.
func seriesKeys(url string) (map[string]bool, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("Accept-Encoding", acceptEncodingHeader)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: gzip: %w", url, err)
		}
		body = zr
	}
	keys := map[string]bool{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if line := sc.Text(); line != "" && line[0] != '#' {
			if i := strings.LastIndexByte(line, ' '); i > 0 {
				line = line[:i]
			}
			keys[line] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	return keys, nil
}

// measurement is one block of scrapes of one process.
type measurement struct {
	cpuMs, wallMs, rssMiB, kbSent float64 // per scrape, except RSS
}

func measure(p *process, n int) (measurement, error) {
	c0, err := p.cpuTicks()
	if err != nil {
		return measurement{}, err
	}
	t0 := time.Now()
	var sent int64
	for range n {
		b, err := scrape(p.url)
		if err != nil {
			return measurement{}, err
		}
		sent += b
	}
	wall := time.Since(t0)
	c1, err := p.cpuTicks()
	if err != nil {
		return measurement{}, err
	}
	rss, err := p.rssMiB()
	if err != nil {
		return measurement{}, err
	}
	return measurement{
		cpuMs:  float64(c1-c0) * 1000 / clockTicks / float64(n),
		wallMs: float64(wall.Microseconds()) / 1000 / float64(n),
		rssMiB: rss,
		kbSent: float64(sent) / 1000 / float64(n),
	}, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return strings.TrimSpace(string(b))
	}
	return strings.Join(f[:3], " ")
}

// host compares /metrics/node with node_exporter's /metrics on this host.
func host(nodeagentBin, nodeExporterBin string, nodeagentArgs, nodeExporterArgs []string, n, rounds int) error {
	fmt.Printf("## Host layer: nodeagent /metrics/node vs node_exporter /metrics, this host\n\n")
	fmt.Printf("Each round: 20 warm-up scrapes each, then %d scrapes of one and %d of the other (the order alternates), text format, Accept-Encoding: gzip. Load average before: %s\n\n", n, n, loadavg())
	na, ne, err := startHostPair(nodeagentBin, nodeExporterBin, nodeagentArgs, nodeExporterArgs)
	if err != nil {
		return err
	}
	defer ne.stop()
	defer na.stop()
	keys := map[*process]map[string]bool{}
	for _, p := range []*process{na, ne} {
		k, err := seriesKeys(p.url)
		if err != nil {
			return err
		}
		keys[p] = k
		fmt.Printf("- %s: %d series\n", p.name, len(k))
	}
	naOnly, neOnly := nodeSeriesDifference(keys[na], keys[ne])
	for _, side := range []struct {
		name string
		only []string
	}{{na.name, naOnly}, {ne.name, neOnly}} {
		fmt.Printf("- node_* series served by %s only: %d %s\n", side.name, len(side.only), strings.Join(side.only[:min(len(side.only), 5)], " "))
	}
	if len(naOnly)+len(neOnly) > 0 {
		fmt.Printf("\n**The two sides do not serve the same node_* series: the ratios below do not compare like with like.** Give both the same settings (--nodeagent-args, --node-exporter-args).\n")
	}
	fmt.Printf("\n| round | nodeagent CPU / wall per scrape | node_exporter CPU / wall per scrape | CPU ratio | wall ratio | nodeagent RSS | node_exporter RSS | gzip bytes per scrape (nodeagent / node_exporter) |\n|---|---|---|---|---|---|---|---|\n")
	for r := range rounds {
		for _, p := range []*process{na, ne} {
			if _, err := measure(p, 20); err != nil {
				return err
			}
		}
		order := []*process{na, ne}
		if r%2 == 1 {
			order = []*process{ne, na}
		}
		got := map[*process]measurement{}
		for _, p := range order {
			m, err := measure(p, n)
			if err != nil {
				return err
			}
			got[p] = m
		}
		a, b := got[na], got[ne]
		fmt.Printf("| %d | %.2f ms / %.2f ms | %.2f ms / %.2f ms | %.2f× | %.2f× | %.1f MiB | %.1f MiB | %.1f / %.1f kB |\n",
			r+1, a.cpuMs, a.wallMs, b.cpuMs, b.wallMs, a.cpuMs/b.cpuMs, a.wallMs/b.wallMs, a.rssMiB, b.rssMiB, a.kbSent, b.kbSent)
	}
	fmt.Printf("\nLoad average after: %s\n\n", loadavg())
	return nil
}

// treeBuild is a nodeagent binary and the flags it runs with over the
// generated trees.
type treeBuild struct {
	bin  string
	args []string
}

// hostArgs are the flags of the host comparison, extra appended to each
// side's. Both run with their defaults, netlink for the interface
// counters among them, except where nodeagent's defaults differ from
// node_exporter's: the CNI interfaces and the kubelet's and runtimes'
// mounts that nodeagent leaves out are left out of node_exporter too, so
// that both read the same devices. node_exporter serves no Go or process
// metrics of its own, as /metrics/node does not.
func hostArgs(nodeagentExtra, nodeExporterExtra []string) (nodeagent, nodeExporter []string) {
	nodeagent = append([]string{"--no-collector.cadvisor", "--no-collector.machine", "--log.level=error"}, nodeagentExtra...)
	nodeExporter = append([]string{"--web.disable-exporter-metrics", "--log.level=error",
		"--collector.netclass.ignored-devices=" + cniDevices, "--collector.netdev.device-exclude=" + cniDevices,
		"--collector.filesystem.mount-points-exclude=" + mountPointsExclude}, nodeExporterExtra...)
	return nodeagent, nodeExporter
}

// startHostPair starts nodeagent (/metrics/node) and node_exporter
// (/metrics) with hostArgs.
func startHostPair(nodeagentBin, nodeExporterBin string, nodeagentExtra, nodeExporterExtra []string) (na, ne *process, err error) {
	naArgs, neArgs := hostArgs(nodeagentExtra, nodeExporterExtra)
	ne, err = start("node_exporter", nodeExporterBin, "--web.listen-address", "/metrics", neArgs...)
	if err != nil {
		return nil, nil, err
	}
	na, err = start("nodeagent", nodeagentBin, "--web.listen-address", "/metrics/node", naArgs...)
	if err != nil {
		ne.stop()
		return nil, nil, err
	}
	return na, ne, nil
}

// nodeSeriesDifference returns the node_* series that only one side
// serves, sorted. The scrape's own series differ by design (nodeagent_*,
// node_scrape_collector_* of the collectors each runs, node_exporter's
// build info); every other node_* series should be on both sides.
func nodeSeriesDifference(nodeagent, nodeExporter map[string]bool) (nodeagentOnly, nodeExporterOnly []string) {
	only := func(a, b map[string]bool) []string {
		var keys []string
		for k := range a {
			if !b[k] && strings.HasPrefix(k, "node_") && !strings.HasPrefix(k, "node_scrape_collector_") && !strings.HasPrefix(k, "node_exporter_build_info") {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		return keys
	}
	return only(nodeagent, nodeExporter), only(nodeExporter, nodeagent)
}

// String names the build in the tables: its path and its flags.
func (b treeBuild) String() string { return strings.Join(append([]string{b.bin}, b.args...), " ") }

// containerTrees scrapes /metrics/cadvisor over generated trees, with
// nodeagent and, when baseline.bin is set, with that build too.
func containerTrees(nodeagent, baseline treeBuild, quota float64, dir string, counts []int, n int) error {
	bins := []treeBuild{nodeagent}
	how := fmt.Sprintf("3 warm-up scrapes, then %d", n)
	if quota > 0 {
		how = fmt.Sprintf("each nodeagent in a cgroup of its own with a CPU quota of %v CPUs; ", quota) + how
	}
	if baseline.bin != "" {
		bins = append(bins, baseline)
		how = fmt.Sprintf("both builds running, 3 warm-up scrapes each, then %d each in blocks of %d, the order of the two swapped from block to block", n, treeBlock)
	}
	fmt.Printf("## Container layer: nodeagent /metrics/cadvisor over generated trees\n\n")
	fmt.Printf("collectors/cadvisor's benchmark node (pods of 4 containers and a sandbox, systemd driver, containerd, every control file of a 6.x kernel) on %s, no kubelet (path labels); only the cadvisor collector; --no-web.reuse-unchanged unless given, as the tree's values never change; %s, text format, Accept-Encoding: gzip, default GC. Load average before: %s\n\n", dir, how, loadavg())
	fmt.Printf("| containers | build | series | CPU per scrape | µs CPU per series | wall per scrape | gzip MB per scrape | RSS after | load average |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range counts {
		pods := (c + 3) / 4 // the tree's pods have 4 containers each
		c = pods * 4
		tree, err := os.MkdirTemp(dir, "nodeagent-perf-")
		if err != nil {
			return fmt.Errorf("creating a tree under %s: %w", dir, err)
		}
		err = func() error {
			defer os.RemoveAll(tree)
			gen := exec.Command("go", "test", "-count=1", "-run", "^TestWriteBenchTree$", "./collectors/cadvisor/")
			gen.Env = append(os.Environ(), "NODEAGENT_WRITE_BENCH_TREE="+tree, "NODEAGENT_WRITE_BENCH_PODS="+strconv.Itoa(pods))
			if out, err := gen.CombinedOutput(); err != nil {
				return fmt.Errorf("writing the %d-container tree: %w\n%s", c, err, out)
			}
			var ps []*process
			var counted []int
			for _, bin := range bins {
				command, remove, err := quotaCommand(quota)
				if err != nil {
					return fmt.Errorf("--tree-quota: %w", err)
				}
				args := bin.args
				if !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "web.reuse-unchanged") }) {
					// The tree's files never change, where a node's
					// counters do: answers would splice every family
					// from the third on, so reuse is off over the
					// trees unless the arguments say otherwise; the
					// comparison with the kubelet, on real pods,
					// measures it.
					args = append([]string{"--no-web.reuse-unchanged"}, args...)
				}
				defer remove()
				p, err := startWith(command, "nodeagent", bin.bin, "--web.listen-address", "/metrics/cadvisor",
					append([]string{"--collector.disable-defaults", "--collector.cadvisor", "--log.level=error",
						"--path.cgroupfs=" + filepath.Join(tree, "cgroup"), "--path.procfs=" + filepath.Join(tree, "proc")}, args...)...)
				if err != nil {
					return err
				}
				defer p.stop()
				s, err := series(p.url)
				if err != nil {
					return err
				}
				if _, err := measure(p, 3); err != nil {
					return err
				}
				ps, counted = append(ps, p), append(counted, s)
			}
			ms, err := interleave(len(ps), n, treeBlock, func(i, k int) (measurement, error) { return measure(ps[i], k) })
			if err != nil {
				return err
			}
			for i, m := range ms {
				s := counted[i]
				fmt.Printf("| %d | %s | %d | %.1f ms | %.2f | %.1f ms | %.2f | %.1f MiB | %s |\n",
					c, bins[i], s, m.cpuMs, m.cpuMs*1000/float64(s), m.wallMs, m.kbSent/1000, m.rssMiB, loadavg())
			}
			if len(ms) == 2 {
				fmt.Printf("| %d | ratio | | %.3f× | | %.3f× | | | |\n", c, ms[0].cpuMs/ms[1].cpuMs, ms[0].wallMs/ms[1].wallMs)
			}
			return nil
		}()
		if err != nil {
			return err
		}
	}
	fmt.Println()
	return nil
}

// treeBlock is how many scrapes of one build make a block when two are
// compared over a tree.
const treeBlock = 5

// interleave measures n scrapes of each of k processes in blocks of
// block scrapes (the last block shorter), the order of the processes
// rotated from block to block, and returns each one's means over its
// scrapes (RSS: after its last block). measure(i, m) measures m scrapes
// of process i.
func interleave(k, n, block int, measure func(i, m int) (measurement, error)) ([]measurement, error) {
	sums := make([]measurement, k)
	for done, b := 0, 0; done < n; b++ {
		m := min(block, n-done)
		for j := range k {
			i := (j + b) % k
			r, err := measure(i, m)
			if err != nil {
				return nil, err
			}
			w := float64(m)
			sums[i].cpuMs += r.cpuMs * w
			sums[i].wallMs += r.wallMs * w
			sums[i].kbSent += r.kbSent * w
			sums[i].rssMiB = r.rssMiB
		}
		done += m
	}
	for i := range sums {
		sums[i].cpuMs /= float64(n)
		sums[i].wallMs /= float64(n)
		sums[i].kbSent /= float64(n)
	}
	return sums, nil
}

// quotaCommand makes the commands of a process in a cgroup of its own
// with a CPU quota of cpus CPUs (exec.Command for 0), and remove, which
// removes that cgroup once the process has ended.
func quotaCommand(cpus float64) (command func(string, ...string) *exec.Cmd, remove func(), err error) {
	if cpus <= 0 {
		return exec.Command, func() {}, nil
	}
	cg, err := quotacgroup.New(cpus)
	if err != nil {
		return nil, nil, err
	}
	return cg.Command, func() {
		if err := cg.Remove(); err != nil {
			fmt.Fprintf(os.Stderr, "perf: removing %s: %v\n", cg.Dir(), err)
		}
	}, nil
}
