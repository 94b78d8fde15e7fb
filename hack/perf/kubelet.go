package main

// The container layer against a real kubelet: nodeagent's /metrics/cadvisor
// beside the kubelet's own, on the node of the test cluster
// (test/cluster/cluster.sh, make perf-kubelet).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"
)

// kubeletOptions are the flags of the comparison with the kubelet.
type kubeletOptions struct {
	envFile string // the harness's env file
	auth    string // token or cert
	rounds  int
	scrapes int           // per side and block
	settle  time.Duration // at most this long for both answers' series to stop changing
	args    []string      // more flags for nodeagent
	quota   float64       // nodeagent's CPU quota in CPUs (0: none)
	plain   bool          // nodeagent over HTTP without authentication
}

// kubeletScrape is one answer: what it cost to fetch, how many series.
type kubeletScrape struct {
	bytes    int64
	series   int
	families map[string]int // series per family, when asked for
}

// scrapeSeries gets p's URL as Prometheus does (text, gzip) and counts the
// answer's samples.
func scrapeSeries(p *process, families bool) (kubeletScrape, error) {
	var out kubeletScrape
	req, err := http.NewRequest(http.MethodGet, p.url, nil)
	if err != nil {
		return out, err
	}
	req.Header.Set("Accept", acceptHeader)
	req.Header.Set("Accept-Encoding", acceptEncodingHeader)
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	c := p.client
	if c == nil {
		c = client
	}
	resp, err := c.Do(req)
	if err != nil {
		return out, fmt.Errorf("GET %s: %w", p.url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return out, fmt.Errorf("GET %s: %s: %s", p.url, resp.Status, strings.TrimSpace(string(b)))
	}
	cr := &countingReader{r: resp.Body}
	var body io.Reader = cr
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(cr)
		if err != nil {
			return out, fmt.Errorf("%s: gzip: %w", p.url, err)
		}
		body = zr
	}
	if families {
		out.families = map[string]int{}
	}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		out.series++
		if families {
			name := line
			if i := bytes.IndexAny(line, "{ "); i >= 0 {
				name = line[:i]
			}
			out.families[string(name)]++
		}
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading %s: %w", p.url, err)
	}
	_, _ = io.Copy(io.Discard, cr)
	out.bytes = cr.n
	return out, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

// kubeletProcess is the kubelet the env file names: its pid from the
// harness's pid file (CLUSTER_DIR/run/kubelet.pid), else the process that
// listens on KUBELET_URL's port; a client with the harness's credentials.
func kubeletProcess(env map[string]string, auth string) (*process, string, error) {
	for _, k := range []string{"KUBELET_URL", "KUBELET_CA"} {
		if env[k] == "" {
			return nil, "", fmt.Errorf("the env file has no %s", k)
		}
	}
	ca, err := os.ReadFile(env["KUBELET_CA"])
	if err != nil {
		return nil, "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, "", fmt.Errorf("%s: no certificate", env["KUBELET_CA"])
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	var rt http.RoundTripper
	tr := &http.Transport{TLSClientConfig: cfg, DisableCompression: true}
	rt = tr
	how := ""
	switch auth {
	case "token":
		path := env["KUBELET_TOKEN_FILE"]
		if path == "" {
			return nil, "", errors.New("--kubelet-auth=token: the env file has no KUBELET_TOKEN_FILE (the harness's kubelet mode has no API server: use cert)")
		}
		tok, err := os.ReadFile(path)
		if err != nil {
			return nil, "", err
		}
		rt = bearer{token: strings.TrimSpace(string(tok)), rt: tr}
		how = "bearer token " + filepath.Base(path) + " (TokenReview and SubjectAccessReview, cached by the kubelet)"
	case "cert":
		pair, err := tls.LoadX509KeyPair(env["KUBELET_CLIENT_CERT"], env["KUBELET_CLIENT_KEY"])
		if err != nil {
			return nil, "", err
		}
		cfg.Certificates = []tls.Certificate{pair}
		how = "client certificate " + filepath.Base(env["KUBELET_CLIENT_CERT"])
	default:
		return nil, "", fmt.Errorf("--kubelet-auth %q: token or cert", auth)
	}
	p := &process{name: "kubelet", url: strings.TrimSuffix(env["KUBELET_URL"], "/") + "/metrics/cadvisor",
		client: &http.Client{Timeout: time.Minute, Transport: rt}}
	if dir := env["CLUSTER_DIR"]; dir != "" {
		if b, err := os.ReadFile(filepath.Join(dir, "run", "kubelet.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && comm(pid) == "kubelet" {
				p.pid = pid
				return p, how, nil
			}
		}
	}
	pid, err := listener(env["KUBELET_URL"])
	if err != nil {
		return nil, "", err
	}
	p.pid = pid
	return p, how, nil
}

type bearer struct {
	token string
	rt    http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.rt.RoundTrip(r)
}

func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}

// listener is the pid of the process with a listening TCP socket on
// rawURL's port.
func listener(rawURL string) (int, error) {
	_, port, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(rawURL, "https://"), "http://"), ":")
	port, _, _ = strings.Cut(port, "/")
	n, err := strconv.Atoi(port)
	if !ok || err != nil {
		return 0, fmt.Errorf("%s: no port", rawURL)
	}
	hexPort := fmt.Sprintf(":%04X", n)
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			// local_address, st (0A: LISTEN), inode.
			if len(fs) > 9 && strings.HasSuffix(fs[1], hexPort) && fs[3] == "0A" {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("nothing listens on port %d", n)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if l, err := os.Readlink(fd); err == nil && inodes[l] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no process holds the socket listening on port %d", n)
}

// runningPods counts the pods the kubelet's /pods lists, and those Running.
func runningPods(p *process, base string) (all, running int, err error) {
	resp, err := p.client.Get(strings.TrimSuffix(base, "/") + "/pods")
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("/pods: %s", resp.Status)
	}
	var pods struct {
		Items []struct {
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pods); err != nil {
		return 0, 0, fmt.Errorf("/pods: %w", err)
	}
	for _, it := range pods.Items {
		if it.Status.Phase == "Running" {
			running++
		}
	}
	return len(pods.Items), running, nil
}

// block is what both processes spent while one side was scraped, or
// while neither was (quiet).
type block struct {
	scrapes         int
	wall            time.Duration
	series, bytes   int64
	kubeletTicks    int
	nodeagentTicks  int
	kubeletSys      int     // system time of kubeletTicks
	nodeagentSys    int     // system time of nodeagentTicks
	kubeletRSS, rss float64 // MiB after the block; rss is nodeagent's
}

func (b *block) add(o block) {
	b.scrapes += o.scrapes
	b.wall += o.wall
	b.series += o.series
	b.bytes += o.bytes
	b.kubeletTicks += o.kubeletTicks
	b.nodeagentTicks += o.nodeagentTicks
	b.kubeletSys += o.kubeletSys
	b.nodeagentSys += o.nodeagentSys
	b.kubeletRSS, b.rss = o.kubeletRSS, o.rss
}

// runBlock scrapes target n times (target nil: sleeps for quiet) and records both
// processes' CPU.
func runBlock(kubelet, nodeagent, target *process, n int, quiet time.Duration) (block, error) {
	var b block
	ku0, ks0, err1 := kubelet.cpuSplit()
	au0, as0, err2 := nodeagent.cpuSplit()
	if err := errors.Join(err1, err2); err != nil {
		return b, err
	}
	t0 := time.Now()
	if target == nil {
		time.Sleep(quiet)
	}
	for range n {
		s, err := scrapeSeries(target, false)
		if err != nil {
			return b, err
		}
		b.scrapes++
		b.series += int64(s.series)
		b.bytes += s.bytes
	}
	b.wall = time.Since(t0)
	ku1, ks1, err1 := kubelet.cpuSplit()
	au1, as1, err2 := nodeagent.cpuSplit()
	if err := errors.Join(err1, err2); err != nil {
		return b, err
	}
	b.kubeletTicks, b.nodeagentTicks = ku1+ks1-ku0-ks0, au1+as1-au0-as0
	b.kubeletSys, b.nodeagentSys = ks1-ks0, as1-as0
	b.kubeletRSS, err1 = kubelet.rssMiB()
	b.rss, err2 = nodeagent.rssMiB()
	return b, errors.Join(err1, err2)
}

// kubeletRound is one round's three blocks.
type kubeletRound struct {
	k, n, q block
}

const tick = time.Second / clockTicks

// idleTicks is what the kubelet spends in d at the idle rate of q.
func idleTicks(ticks int, q time.Duration, d time.Duration) float64 {
	if q <= 0 {
		return 0
	}
	return float64(ticks) * d.Seconds() / q.Seconds()
}

// kubeletCompare measures nodeagent's /metrics/cadvisor beside the
// kubelet's on the harness's node.
func kubeletCompare(nodeagentBin string, o kubeletOptions) error {
	env, err := fakekubelet.ReadEnvFile(o.envFile)
	if err != nil {
		return fmt.Errorf("--kubelet-env: %w", err)
	}
	kubelet, how, err := kubeletProcess(env, o.auth)
	if err != nil {
		return err
	}
	for _, k := range []string{"KUBELET_CLIENT_CERT", "KUBELET_CLIENT_KEY"} {
		if env[k] == "" {
			return fmt.Errorf("the env file has no %s", k)
		}
	}
	args := []string{"--log.level=error",
		"--path.cgroupfs=/sys/fs/cgroup/unified", "--path.procfs=/proc", "--path.sysfs=/sys",
		"--kubelet.url=" + env["KUBELET_URL"], "--kubelet.ca-file=" + env["KUBELET_CA"],
		"--kubelet.client-cert-file=" + env["KUBELET_CLIENT_CERT"], "--kubelet.client-key-file=" + env["KUBELET_CLIENT_KEY"],
		"--kubelet.token-file="}
	if img := env["POD_IMAGE"]; img != "" {
		args = append(args, "--collector.cadvisor.sandbox-image="+img)
	}
	// nodeagent runs as the DaemonSet runs it: under its CPU limit, and
	// serving TLS with every scrape's token reviewed (cached, as the
	// kubelet caches the reviews of its own scrapes' token).
	command, remove, err := quotaCommand(o.quota)
	if err != nil {
		return fmt.Errorf("--kubelet-quota: %w (--kubelet-quota 0 runs nodeagent without one)", err)
	}
	defer remove()
	quota := "no CPU quota"
	if o.quota > 0 {
		quota = fmt.Sprintf("a CPU quota of %v CPUs", o.quota)
	}
	var c *http.Client
	served := "plain HTTP, no authentication (not as the DaemonSet serves it)"
	if kc := env["KUBECONFIG"]; kc != "" && !o.plain {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		token, remove, err := scraperToken(ctx, kc)
		cancel()
		if err != nil {
			return err
		}
		defer func() {
			if err := remove(); err != nil {
				fmt.Fprintf(os.Stderr, "perf: removing the scraper's ServiceAccount and its rights: %v\n", err)
			}
		}()
		args = append(args, "--web.kubernetes-auth", "--kubeconfig="+kc)
		c = scraperClient(token)
		served = "as the DaemonSet serves it: TLS with its self-signed certificate (insecureSkipVerify, as the shipped ServiceMonitor), the bearer token of ServiceAccount " +
			scraperNamespace + "/" + scraperName + " (get on /metrics/*, as deploy/kubernetes/scraper-rbac.yaml grants Prometheus) checked by TokenReview and SubjectAccessReview, cached; HTTP/1.1, connection kept alive"
	}
	args = append(args, o.args...)
	nodeagent, err := launch(command, c, "nodeagent", nodeagentBin, "--web.listen-address", "/metrics/cadvisor", args...)
	if err != nil {
		return err
	}
	defer nodeagent.stop()

	all, running, err := runningPods(kubelet, env["KUBELET_URL"])
	if err != nil {
		return err
	}
	fmt.Printf("## Container layer: nodeagent /metrics/cadvisor vs the kubelet's /metrics/cadvisor, the test cluster's node\n\n")
	fmt.Printf("- kubelet: pid %d, %s, %s (TLS, HTTP/1.1, connection kept alive)\n", kubelet.pid, env["KUBELET_URL"], how)
	fmt.Printf("- nodeagent: %s %s; %s; %s\n", nodeagentBin, strings.Join(args, " "), quota, served)
	fmt.Printf("- pods on the node (the kubelet's /pods): %d, %d Running\n", all, running)
	fmt.Printf("- load average before: %s\n\n", loadavg())

	// The kubelet's cAdvisor serves a new cgroup only after a housekeeping
	// round: wait until neither side's series change for three polls.
	var ks, ns kubeletScrape
	prev := [2]int{-1, -1}
	stable := 0
	t0 := time.Now()
	for {
		if ks, err = scrapeSeries(kubelet, true); err != nil {
			return err
		}
		if ns, err = scrapeSeries(nodeagent, true); err != nil {
			return err
		}
		if cur := [2]int{ks.series, ns.series}; cur == prev {
			stable++
		} else {
			stable, prev = 0, cur
		}
		if stable >= 3 {
			break
		}
		if time.Since(t0) > o.settle {
			fmt.Printf("(series still changing after %v: kubelet %d, nodeagent %d; measuring anyway)\n\n", o.settle, ks.series, ns.series)
			break
		}
		time.Sleep(5 * time.Second)
	}
	fmt.Printf("Series after %v of settling: kubelet %d in %d families, nodeagent %d in %d families.\n\n",
		time.Since(t0).Round(time.Second), ks.series, len(ks.families), ns.series, len(ns.families))
	printFamilies(ks.families, ns.families)

	// Warm-up, which also times a kubelet block for the first quiet one.
	w, err := runBlock(kubelet, nodeagent, kubelet, o.scrapes, 0)
	if err != nil {
		return err
	}
	if _, err := runBlock(kubelet, nodeagent, nodeagent, o.scrapes, 0); err != nil {
		return err
	}
	lastK := w.wall
	fmt.Printf("Each round: %d scrapes of the kubelet, %d of nodeagent, and a quiet interval as long as the last kubelet block, in the order given; text format, Accept-Encoding: gzip, back to back. CPU is utime+stime from /proc/<pid>/stat (10 ms ticks) over each block. The kubelet's CPU per scrape is given raw and less its idle CPU (the quiet interval's rate over the block's length); nodeagent's idle CPU is subtracted the same way.\n\n", o.scrapes, o.scrapes)
	fmt.Printf("| round | order | kubelet CPU per scrape (raw / less idle) | kubelet series | kubelet µs per series | nodeagent CPU per scrape | nodeagent series | nodeagent µs per series | ratio per series | ratio per scrape | kubelet idle | kubelet / nodeagent RSS | gzip kB per scrape (kubelet / nodeagent) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var total kubeletRound
	for r := range o.rounds {
		var rd kubeletRound
		steps := []string{"K", "Q", "N"}
		if r%2 == 1 {
			steps = []string{"N", "Q", "K"}
		}
		for _, s := range steps {
			var b block
			var err error
			switch s {
			case "K":
				b, err = runBlock(kubelet, nodeagent, kubelet, o.scrapes, 0)
				rd.k, lastK = b, b.wall
			case "N":
				b, err = runBlock(kubelet, nodeagent, nodeagent, o.scrapes, 0)
				rd.n = b
			case "Q":
				b, err = runBlock(kubelet, nodeagent, nil, 0, lastK)
				rd.q = b
			}
			if err != nil {
				return err
			}
		}
		printKubeletRow(strconv.Itoa(r+1), strings.Join(steps, " "), rd)
		total.k.add(rd.k)
		total.n.add(rd.n)
		total.q.add(rd.q)
	}
	printKubeletRow("all", "", total)
	fmt.Printf("\nLoad average after: %s\n\n", loadavg())
	// What nodeagent's scrapes cost the kubelet (its /pods, fetched when
	// stale or when a new cgroup appears), and nodeagent's idle CPU.
	extra := float64(total.n.kubeletTicks) - idleTicks(total.q.kubeletTicks, total.q.wall, total.n.wall)
	fmt.Printf("- the kubelet's CPU during nodeagent's blocks, less its idle: %.2f ms per nodeagent scrape (%d ticks in %v)\n",
		extra*float64(tick.Milliseconds())/float64(total.n.scrapes), total.n.kubeletTicks, total.n.wall.Round(time.Millisecond))
	fmt.Printf("- system time, of the CPU in its own blocks: the kubelet %.0f %%, nodeagent %.0f %%\n",
		100*float64(total.k.kubeletSys)/float64(total.k.kubeletTicks), 100*float64(total.n.nodeagentSys)/float64(total.n.nodeagentTicks))
	fmt.Printf("- nodeagent's CPU in the quiet intervals: %d ticks in %v\n", total.q.nodeagentTicks, total.q.wall.Round(time.Millisecond))
	fmt.Printf("- the kubelet's CPU in the quiet intervals: %d ticks in %v (%.1f %% of a core)\n\n",
		total.q.kubeletTicks, total.q.wall.Round(time.Millisecond), 100*float64(total.q.kubeletTicks)*tick.Seconds()/total.q.wall.Seconds())
	return nil
}

func printKubeletRow(name, order string, rd kubeletRound) {
	ms := func(ticks float64, n int) float64 { return ticks * float64(tick.Milliseconds()) / float64(n) }
	kRaw := float64(rd.k.kubeletTicks)
	kNet := kRaw - idleTicks(rd.q.kubeletTicks, rd.q.wall, rd.k.wall)
	nNet := float64(rd.n.nodeagentTicks) - idleTicks(rd.q.nodeagentTicks, rd.q.wall, rd.n.wall)
	kSeries := float64(rd.k.series) / float64(rd.k.scrapes)
	nSeries := float64(rd.n.series) / float64(rd.n.scrapes)
	kPer := ms(kNet, rd.k.scrapes) * 1000 / kSeries
	nPer := ms(nNet, rd.n.scrapes) * 1000 / nSeries
	fmt.Printf("| %s | %s | %.1f / %.1f ms | %.0f | %.2f | %.2f ms | %.0f | %.2f | **%.1f×** | %.1f× | %.1f %% | %.0f / %.0f MiB | %.0f / %.0f |\n",
		name, order, ms(kRaw, rd.k.scrapes), ms(kNet, rd.k.scrapes), kSeries, kPer,
		ms(nNet, rd.n.scrapes), nSeries, nPer, kPer/nPer, kNet/float64(rd.k.scrapes)/(nNet/float64(rd.n.scrapes)),
		100*float64(rd.q.kubeletTicks)*tick.Seconds()/rd.q.wall.Seconds(),
		rd.k.kubeletRSS, rd.n.rss,
		float64(rd.k.bytes)/1000/float64(rd.k.scrapes), float64(rd.n.bytes)/1000/float64(rd.n.scrapes))
}

// printFamilies lists the families one side serves alone, and the series
// of the families both serve.
func printFamilies(kubelet, nodeagent map[string]int) {
	var both, konly, nonly []string
	var kb, nb, ko, no int
	for f, n := range kubelet {
		if m, ok := nodeagent[f]; ok {
			both = append(both, f)
			kb += n
			nb += m
		} else {
			konly = append(konly, f)
			ko += n
		}
	}
	for f, n := range nodeagent {
		if _, ok := kubelet[f]; !ok {
			nonly = append(nonly, f)
			no += n
		}
	}
	slices.Sort(both)
	slices.Sort(konly)
	slices.Sort(nonly)
	list := func(fs []string, m map[string]int) string {
		var s []string
		for _, f := range fs {
			s = append(s, fmt.Sprintf("%s (%d)", f, m[f]))
		}
		return strings.Join(s, ", ")
	}
	fmt.Printf("- families both serve: %d, with %d series from the kubelet and %d from nodeagent\n", len(both), kb, nb)
	fmt.Printf("- the kubelet's alone: %d families, %d series: %s\n", len(konly), ko, list(konly, kubelet))
	fmt.Printf("- nodeagent's alone: %d families, %d series: %s\n\n", len(nonly), no, list(nonly, nodeagent))
}
