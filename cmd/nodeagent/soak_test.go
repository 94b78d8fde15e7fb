package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// procSample is what the soak watches of the agent's process.
type procSample struct {
	rssKiB int
	// Of rssKiB, the anonymous pages (the heap, stacks) and those of
	// files (the executable's, mapped back as code runs that start-up
	// did not need, --release-startup-pages).
	anonKiB, fileKiB int
	threads          int
	fds              []string // the targets of /proc/<pid>/fd, sorted
}

func sampleProc(t *testing.T, pid int) procSample {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d", pid)
	f, err := os.Open(dir + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var s procSample
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			s.rssKiB, err = strconv.Atoi(fields[0])
		case "RssAnon":
			s.anonKiB, err = strconv.Atoi(fields[0])
		case "RssFile":
			s.fileKiB, err = strconv.Atoi(fields[0])
		case "Threads":
			s.threads, err = strconv.Atoi(fields[0])
		}
		if err != nil {
			t.Fatalf("%s/status: %s: %v", dir, k, err)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s/status: %v", dir, err)
	}
	ents, err := os.ReadDir(dir + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, "fd", e.Name()))
		if err != nil { // closed since the listing
			continue
		}
		if strings.HasPrefix(target, "socket:") {
			target = "socket" // inode numbers change with reconnections
		}
		s.fds = append(s.fds, target)
	}
	slices.Sort(s.fds)
	return s
}

// pprofRE finds the loopback address the agent serves pprof on in its log.
var pprofRE = regexp.MustCompile(`msg=listening flag=--debug.pprof-address address=(\S+)`)

// heapAllocRE is the runtime.MemStats line of a debug=1 heap profile.
var heapAllocRE = regexp.MustCompile(`(?m)^# HeapAlloc = (\d+)$`)

// liveHeap asks the agent's pprof server for a heap profile after a
// garbage collection (gc=1) and returns the heap then allocated: what the
// agent holds on to, unlike resident memory, which depends on where in its
// GC cycle the process is and on when the runtime returns pages. The first
// collection moves sync.Pool contents to the pools' victim caches; the
// second frees them, so pooled buffers are not counted.
func liveHeap(t *testing.T, pprofBase string) int {
	t.Helper()
	// No keep-alive: an idle connection would be one more descriptor in
	// the agent when the soak compares them.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
	var alloc int
	for range 2 {
		resp, err := client.Get(pprofBase + "/debug/pprof/heap?gc=1&debug=1")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("reading %s: %v", resp.Request.URL, err)
		}
		m := heapAllocRE.FindSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("%s: status %d, no HeapAlloc line in %d bytes", resp.Request.URL, resp.StatusCode, len(body))
		}
		alloc, _ = strconv.Atoi(string(m[1])) // digits
	}
	return alloc
}

// soakRequests are the requests the soak's clients rotate through: every
// metrics path, in each format and content encoding a scraper may ask for
// (so the pooled compressors are taken and returned concurrently).
func soakRequests(base string) []*http.Request {
	paths := []string{"/metrics", "/metrics/node", "/metrics/cadvisor", "/metrics/nodeagent", "/metrics/kubelet", "/metrics/probes", "/metrics/slis", "/healthz", "/readyz"}
	variants := []struct{ accept, encoding string }{
		{"", "identity"},
		{"", "gzip"},
		{"", "zstd"},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "gzip"},
	}
	var reqs []*http.Request
	for _, p := range paths {
		for _, v := range variants {
			r, _ := http.NewRequest(http.MethodGet, base+p, nil) // a valid URL
			if v.accept != "" {
				r.Header.Set("Accept", v.accept)
			}
			r.Header.Set("Accept-Encoding", v.encoding)
			reqs = append(reqs, r)
		}
	}
	return reqs
}

// TestSoak scrapes the built binary, over the end-to-end node with a fake
// kubelet, from 4 concurrent clients on every path: after the warm-up (a
// tenth of the scrapes, at least 1,000), the live heap (after a garbage
// collection) stays within 10 % of what it was after the warm-up, and
// descriptors and threads are unchanged (the Go runtime may start up to 2
// more threads). 10,000 scrapes (make soak), with 400 more cgroups so
// that the container layer's gzip answers are written in chunks on two
// threads; 2,000 under -short, which make test runs, over the end-to-end
// node as it is. The full run also holds resident memory (its highest
// over the last tenth) within 10 % of its highest over the warm-up's second
// half; the short one only logs it: over 2,000 scrapes on a loaded machine
// (make test runs the race detector over the other packages beside it) one
// unlucky alignment of four large answers moves it by more than a leak of
// that length could (44.4 → 49.8 MiB once in CI, live heap unchanged).
func TestSoak(t *testing.T) {
	scrapes := 10000
	if testing.Short() {
		scrapes = 2000
	}
	const clients = 4
	// At least 1,000: the short run's 200 left the heap still growing.
	warmup := max(scrapes/10, 1000)

	bin := buildBinary(t)
	args := e2eArgs(t)
	for i, a := range args {
		if strings.HasPrefix(a, "--log.level=") {
			args[i] = "--log.level=info" // not debug: 40 lines a scrape are not what is soaked; info says where it listens
		}
	}
	if !testing.Short() {
		// The full run's /metrics/cadvisor is ~3 MB of text, written in
		// chunks on two threads when gzip is asked for
		// (--web.parallel-gzip).
		args, _ = largeCadvisorArgs(t, args, 400)
		args = append(args, "--gomaxprocs=2")
	}
	args = append(args, "--debug.pprof-address=127.0.0.1:0")
	base, pid, logs := startBinaryProc(t, bin, args...)
	m := pprofRE.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no pprof address in the agent's log:\n%s", logs.String())
	}
	pprofBase := "http://" + m[1]
	reqs := soakRequests(base)
	transport := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: transport, Timeout: time.Minute}

	var next atomic.Int64
	run := func(n int) {
		t.Helper()
		next.Store(0)
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					req := reqs[int(i)%len(reqs)]
					resp, err := client.Do(req)
					if err != nil {
						errs <- fmt.Errorf("GET %s: %w", req.URL, err)
						return
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err != nil {
						errs <- fmt.Errorf("reading %s: %w", req.URL, err)
						return
					}
					if resp.StatusCode != http.StatusOK {
						errs <- fmt.Errorf("GET %s (Accept-Encoding %s): status %d", req.URL, req.Header.Get("Accept-Encoding"), resp.StatusCode)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	// settled samples the process once the clients' connections are
	// closed and the agent has seen them close: with want, until its
	// descriptors are want; without, until they are the same in three
	// samples in a row (a sample taken as the clients hang up would count
	// sockets that are about to go).
	settled := func(want []string) procSample {
		transport.CloseIdleConnections()
		s := sampleProc(t, pid)
		same := 0
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if want != nil && slices.Equal(s.fds, want) || want == nil && same == 2 {
				break
			}
			time.Sleep(100 * time.Millisecond)
			prev := s
			s = sampleProc(t, pid)
			if slices.Equal(prev.fds, s.fds) {
				same++
			} else {
				same = 0
			}
		}
		return s
	}

	// peak runs n scrapes in five rounds and returns the highest resident
	// memory sampled between them: one sample would land anywhere in the
	// GC cycle (the heap goal swings by a few MiB from scrape to scrape),
	// so the warm-up and the end are each taken as the peak of the same
	// kind of window.
	peak := func(n int) procSample {
		var p procSample
		for range 5 {
			run(n / 5)
			if s := sampleProc(t, pid); s.rssKiB > p.rssKiB {
				p = s
			}
		}
		return p
	}

	// The warm-up fills the pools and lets the heap reach its steady
	// size; resident memory is then the peak over its second half, and at
	// the end the peak over the last tenth of the scrapes.
	start := time.Now()
	run(warmup / 2)
	// The heap profile taken after the warm-up runs code no scrape runs
	// (~1.2 MiB of the executable's pages, faulted in from then on):
	// take one now, so that both samples have those pages.
	liveHeap(t, pprofBase)
	warmPeak := peak(warmup / 2)
	warm := settled(nil)
	warm.rssKiB, warm.anonKiB, warm.fileKiB = warmPeak.rssKiB, warmPeak.anonKiB, warmPeak.fileKiB
	warmHeap := liveHeap(t, pprofBase)
	run(scrapes - scrapes/10)
	endPeak := peak(scrapes / 10)
	end := settled(warm.fds)
	end.rssKiB, end.anonKiB, end.fileKiB = endPeak.rssKiB, endPeak.anonKiB, endPeak.fileKiB
	endHeap := liveHeap(t, pprofBase)
	t.Logf("%d scrapes after %d of warm-up from %d clients over %d requests in %v: live heap %d → %d KiB, RSS %d → %d KiB (anonymous %d → %d, files %d → %d), threads %d → %d, %d → %d descriptors",
		scrapes, warmup, clients, len(reqs), time.Since(start).Round(time.Millisecond), warmHeap>>10, endHeap>>10, warm.rssKiB, end.rssKiB,
		warm.anonKiB, end.anonKiB, warm.fileKiB, end.fileKiB, warm.threads, end.threads, len(warm.fds), len(end.fds))

	if limit := warmHeap + warmHeap/10; endHeap > limit {
		t.Errorf("the live heap grew from %d KiB after the warm-up to %d KiB (more than 10 %%)", warmHeap>>10, endHeap>>10)
	}
	if limit := warm.rssKiB + warm.rssKiB/10; !testing.Short() && end.rssKiB > limit {
		t.Errorf("resident memory grew from %d KiB after the warm-up to %d KiB (more than 10 %%)", warm.rssKiB, end.rssKiB)
	}
	if end.threads > warm.threads+2 {
		t.Errorf("threads grew from %d to %d (the Go runtime may add 2)", warm.threads, end.threads)
	}
	if !slices.Equal(warm.fds, end.fds) {
		t.Errorf("descriptors changed: %d after the warm-up, %d at the end\nafter the warm-up: %q\nat the end: %q", len(warm.fds), len(end.fds), warm.fds, end.fds)
	}
}
