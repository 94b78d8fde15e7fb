package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
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
	rssKiB  int
	threads int
	fds     []string // the targets of /proc/<pid>/fd, sorted
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
// kubelet, from 4 concurrent clients on every path: after the warm-up
// (a tenth of the scrapes), resident memory stays within 10 % of its
// value then, and descriptors and threads are unchanged (the Go runtime
// may start up to 2 more threads). 10,000 scrapes (make soak); 2,000 under
// -short, which make test runs.
func TestSoak(t *testing.T) {
	scrapes := 10000
	if testing.Short() {
		scrapes = 2000
	}
	const clients = 4
	warmup := scrapes / 10

	bin := buildBinary(t)
	args := e2eArgs(t)
	for i, a := range args {
		if strings.HasPrefix(a, "--log.level=") {
			args[i] = "--log.level=info" // not debug: 40 lines a scrape are not what is soaked; info says where it listens
		}
	}
	base, pid := startBinaryPID(t, bin, args...)
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
	// closed and the agent has seen them close: its descriptors equal
	// want, or with want nil the same in two samples 200 ms apart. The
	// warm-up's sample waits too: taken at once, it caught the last
	// requests' files and connections still open (4 more descriptors than
	// at the end, seen under load), which the end's never matched.
	settled := func(want []string) procSample {
		transport.CloseIdleConnections()
		var s, prev procSample
		deadline := time.Now().Add(10 * time.Second)
		for i := 0; ; i++ {
			s = sampleProc(t, pid)
			switch {
			case want != nil && slices.Equal(s.fds, want),
				want == nil && i > 0 && slices.Equal(s.fds, prev.fds),
				time.Now().After(deadline):
				return s
			}
			prev = s
			time.Sleep(200 * time.Millisecond)
		}
	}

	start := time.Now()
	run(warmup)
	warm := settled(nil)
	run(scrapes)
	end := settled(warm.fds)
	t.Logf("%d scrapes after %d of warm-up from %d clients over %d requests in %v: RSS %d → %d KiB, threads %d → %d, %d → %d descriptors",
		scrapes, warmup, clients, len(reqs), time.Since(start).Round(time.Millisecond), warm.rssKiB, end.rssKiB, warm.threads, end.threads, len(warm.fds), len(end.fds))

	if limit := warm.rssKiB + warm.rssKiB/10; end.rssKiB > limit {
		t.Errorf("resident memory grew from %d KiB after the warm-up to %d KiB (more than 10 %%)", warm.rssKiB, end.rssKiB)
	}
	if end.threads > warm.threads+2 {
		t.Errorf("threads grew from %d to %d (the Go runtime may add 2)", warm.threads, end.threads)
	}
	if !slices.Equal(warm.fds, end.fds) {
		t.Errorf("descriptors changed: %d after the warm-up, %d at the end\nafter the warm-up: %q\nat the end: %q", len(warm.fds), len(end.fds), warm.fds, end.fds)
	}
}
