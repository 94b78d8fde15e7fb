package cadvisor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/cgroup"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

// benchPods is the benchmark node: 250 pods of 4 containers (plus each
// pod's sandbox), systemd driver, containerd: 1,000 containers, 1,507
// cgroups with every control file a 6.x kernel has.
const benchPods = 250

// benchFixture generates the benchmark node's tree with n pods.
func benchFixture(n int) *fixture {
	f := &fixture{procs: map[int]fxProc{}, full: true}
	f.services("containerd.service", "kubelet.service")
	pods := make([]podSpec, n)
	qos := []string{"guaranteed", "burstable", "besteffort"}
	for i := range pods {
		pods[i] = podSpec{
			uid:        fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i),
			namespace:  fmt.Sprintf("team-%d", i%10),
			name:       fmt.Sprintf("app-%d-7d9f", i),
			qos:        qos[i%3],
			containers: []string{"app", "sidecar", "proxy", "logger"},
			quota:      50000,
			memMax:     268435456,
		}
	}
	f.kubernetes(layout{systemd: true, runtime: "containerd"}, pods, 10000)
	return f
}

// benchTree writes the benchmark tree once per benchmark into
// $NODEAGENT_BENCH_DIR (for example /dev/shm, a tmpfs) or a temporary
// directory, and returns its case directory.
func benchTree(b *testing.B) string {
	b.Helper()
	base := os.Getenv("NODEAGENT_BENCH_DIR")
	if base == "" {
		base = b.TempDir()
	} else {
		d, err := os.MkdirTemp(base, "nodeagent-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(d) })
		base = d
	}
	benchFixture(benchPods).write(b, base)
	return base
}

func benchEnv(b *testing.B, dir string) collectors.Env {
	b.Helper()
	pfs, err := procfs.NewFS(filepath.Join(dir, "proc"))
	if err != nil {
		b.Fatal(err)
	}
	return collectors.Env{
		Paths:       collectors.Paths{ProcFS: filepath.Join(dir, "proc"), SysFS: filepath.Join(dir, "sys"), CgroupFS: filepath.Join(dir, "cgroup")},
		Proc:        pfs,
		Now:         time.Now,
		PodMetadata: loadPods(b, filepath.Join(dir, "pods.json")),
	}
}

// BenchmarkCadvisorScrape is what a /metrics/cadvisor scrape of the
// 1,000-container node costs: the Scraper running the collector (walk,
// parallel reads, labels, families), and with text encoding as promhttp
// does it. Sub-benchmarks vary the descriptor cache.
// countSeries is the number of series in res.
func countSeries(res collectors.Result) int {
	n := 0
	for _, mf := range res.Families {
		n += len(mf.GetMetric())
	}
	for _, f := range res.Compact {
		n += f.Len()
	}
	return n
}

func BenchmarkCadvisorScrape(b *testing.B) {
	dir := benchTree(b)
	for _, bc := range []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"all-files-cached", []string{"--collector.cadvisor.max-open-files=100000"}},
		{"no-files-cached", []string{"--collector.cadvisor.max-open-files=0"}},
	} {
		c := buildCadvisor(b, benchEnv(b, dir), bc.args...)
		s, err := collectors.NewScraper([]collectors.Instance{{Name: "cadvisor", Layer: collectors.LayerCadvisor, Collector: c}},
			collectors.ScraperOptions{Timeout: time.Minute, MaxConcurrency: 8})
		if err != nil {
			b.Fatal(err)
		}
		// gather is a scrape's collection as the metrics paths take it:
		// the compact families as the collector built them.
		gather := func(b *testing.B) int {
			res, err := s.GatherResult(time.Now().Add(time.Minute), []string{"cadvisor"})
			if err != nil {
				b.Fatal(err)
			}
			return countSeries(res)
		}
		gather(b) // open the descriptors, as the first scrape after start does
		b.Run(bc.name+"/gather", func(b *testing.B) {
			b.ReportAllocs()
			series := 0
			for b.Loop() {
				series = gather(b)
			}
			b.ReportMetric(float64(series), "series")
			b.ReportMetric(float64(c.budget.Open()), "open-fds")
		})
		b.Run(bc.name+"/gather+encode", func(b *testing.B) {
			b.ReportAllocs()
			var out bytes.Buffer
			for b.Loop() {
				mfs, err := s.Gather(time.Now().Add(time.Minute), []string{"cadvisor"})
				if err != nil {
					b.Fatal(err)
				}
				out.Reset()
				enc := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, mf := range mfs {
					if err := enc.Encode(mf); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(out.Len())/(1<<20), "MiB-text")
			b.ReportMetric(rssMiB(), "RSS-MiB")
		})
		if bc.name == "default" {
			// The whole answer as the HTTP handler writes it
			// (internal/exposition): text, uncompressed and as
			// Prometheus asks for it (gzip: on one goroutine, as under
			// the shipped CPU limits and --no-web.parallel-gzip, and in
			// chunks on all threads, as served otherwise);
			// µs/series is the time per op over the series served,
			// CPU-ms the process' CPU time per op.
			for _, ac := range []struct {
				name, enc string
				opts      exposition.Options
			}{
				{"identity", "identity", exposition.Options{}},
				{"gzip", "gzip", exposition.Options{}},
				{"gzip-parallel", "gzip", exposition.Options{ParallelGzip: true}},
			} {
				b.Run(bc.name+"/answer/"+ac.name, func(b *testing.B) {
					req := httptest.NewRequest(http.MethodGet, "/metrics/cadvisor", nil)
					req.Header.Set("Accept-Encoding", ac.enc)
					w := &countingResponse{header: http.Header{}}
					series := 0
					b.ReportAllocs()
					cpu0 := processCPU(b)
					for b.Loop() {
						res, err := s.GatherResult(time.Now().Add(time.Minute), []string{"cadvisor"})
						if err != nil {
							b.Fatal(err)
						}
						series = countSeries(res)
						w.n = 0
						ac.opts.Write(w, req, res.Families, res.Compact, nil, func(msg string, err error) { b.Fatalf("%s: %v", msg, err) })
					}
					cpu := processCPU(b) - cpu0
					if got := w.header.Get("Content-Encoding"); ac.enc == "gzip" && got != "gzip" {
						b.Fatalf("Content-Encoding %q, want gzip", got)
					}
					b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(series), "µs/series")
					b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "CPU-ms/op")
					b.ReportMetric(float64(w.n)/(1<<20), "MiB-sent")
					b.ReportMetric(rssMiB(), "RSS-MiB")
				})
				// The answer's writing alone, over one collection:
				// the part of a scrape after the reads, which the
				// parallel writer spreads over the cores.
				b.Run(bc.name+"/write/"+ac.name, func(b *testing.B) {
					req := httptest.NewRequest(http.MethodGet, "/metrics/cadvisor", nil)
					req.Header.Set("Accept-Encoding", ac.enc)
					w := &countingResponse{header: http.Header{}}
					res, err := s.GatherResult(time.Now().Add(time.Minute), []string{"cadvisor"})
					if err != nil {
						b.Fatal(err)
					}
					series := countSeries(res)
					b.ReportAllocs()
					cpu0 := processCPU(b)
					for b.Loop() {
						w.n = 0
						ac.opts.Write(w, req, res.Families, res.Compact, nil, func(msg string, err error) { b.Fatalf("%s: %v", msg, err) })
					}
					cpu := processCPU(b) - cpu0
					b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(series), "µs/series")
					b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "CPU-ms/op")
					b.ReportMetric(float64(w.n)/(1<<20), "MiB-sent")
				})
			}
		}
		closeGroups(c)
	}
}

// processCPU is the CPU time the process has used, user and system.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// closeGroups closes the collector's cached descriptors, so that the
// next sub-benchmark's budget starts from none.
func closeGroups(c *cadvisorCollector) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.states {
		st.group.Close()
	}
}

// rssMiB is this process's resident set, in MiB.
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// benchEntries lists the cgroups a scrape reads.
func benchEntries(b *testing.B, root string) []cgroup.Entry {
	b.Helper()
	fs, err := cgroup.NewFS(root)
	if err != nil {
		b.Fatal(err)
	}
	entries, err := fs.NewWalker().Walk()
	if err != nil {
		b.Fatal(err)
	}
	return entries
}

// benchCgroupDirs lists the directories of the cgroups a scrape reads.
func benchCgroupDirs(b *testing.B, root string) []string {
	var dirs []string
	for _, e := range benchEntries(b, root) {
		dirs = append(dirs, filepath.Join(root, e.Path))
	}
	return dirs
}

// existingFiles lists the files named names that exist in dirs: the files
// a scrape reads.
func existingFiles(dirs, names []string) []string {
	var out []string
	for _, d := range dirs {
		for _, n := range names {
			if _, err := os.Stat(d + "/" + n); err == nil {
				out = append(out, d+"/"+n)
			}
		}
	}
	return out
}

// readFilesRaw reads every path with open+read+close and nothing else, on
// workers goroutines, and returns the bytes read.
func readFilesRaw(paths []string, workers int) int64 {
	var total atomic.Int64
	bufs := make([][]byte, workers)
	for w := range bufs {
		bufs[w] = make([]byte, 64<<10)
	}
	forEachParallel(context.Background(), len(paths), workers, func(w, i int) {
		fd, err := unix.Open(paths[i], unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		m, _ := unix.Read(fd, bufs[w])
		unix.Close(fd)
		total.Add(int64(m))
	})
	return total.Load()
}

// servedFileNames are the files a default scrape reads every time (the
// limit files are read every --collector.cadvisor.spec-refresh-interval).
func servedFileNames() []string {
	var want cgroup.FileSet
	for _, f := range allContainerFamilies() {
		want |= f.files &^ specFiles
	}
	return want.Names()
}

// BenchmarkCadvisorRawRead only reads the files a scrape uses, open+read+
// close each, once on one goroutine and once on as many as the collector
// uses: the floor the collector is measured against.
func BenchmarkCadvisorRawRead(b *testing.B) {
	dir := benchTree(b)
	paths := existingFiles(benchCgroupDirs(b, filepath.Join(dir, "cgroup")), servedFileNames())
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.ReportAllocs()
			var n int64
			for b.Loop() {
				n = readFilesRaw(paths, workers)
			}
			b.ReportMetric(float64(len(paths)), "files")
			b.ReportMetric(float64(n)/(1<<20), "MiB-read")
		})
	}
}

// BenchmarkContainerdStatFiltered reads the same cgroups with
// containerd/cgroups' cgroup2 manager (StatFiltered with only the
// controllers served), the library the design names for cgroup v2 stats,
// plus the files it lacks (cpu.max, cpu.weight, memory.min,
// cgroup.procs): what the collector would cost on it.
func BenchmarkContainerdStatFiltered(b *testing.B) {
	dir := benchTree(b)
	root := filepath.Join(dir, "cgroup")
	var mgrs []*cgroup2.Manager
	for _, e := range benchEntries(b, root) {
		m, err := cgroup2.Load(e.Path, cgroup2.WithMountpoint(root))
		if err != nil {
			b.Fatal(err)
		}
		mgrs = append(mgrs, m)
	}
	extra := existingFiles(benchCgroupDirs(b, root), []string{"cpu.max", "cpu.weight", "memory.min", "cgroup.procs"})
	mask := cgroup2.StatPids | cgroup2.StatCPU | cgroup2.StatMemory | cgroup2.StatMemoryEvents | cgroup2.StatIO
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				forEachParallel(context.Background(), len(mgrs), workers, func(_, i int) {
					if _, err := mgrs[i].StatFiltered(mask); err != nil {
						b.Error(err)
					}
				})
				readFilesRaw(extra, workers)
			}
		})
	}
}

// BenchmarkCadvisorScrapeKernel measures on the kernel's cgroupfs: it
// makes the benchmark node's 1,507 cgroups under this machine's cgroup v2
// hierarchy (on a hybrid host only cpu.stat, the PSI files and
// cgroup.procs exist there) and scrapes them, next to a raw read of the
// same files. Needs root; skipped otherwise.
func BenchmarkCadvisorScrapeKernel(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root to create cgroups")
	}
	mount := cgroup2Mount()
	if mount == "" {
		b.Skip("no cgroup2 hierarchy")
	}
	root, err := os.MkdirTemp(mount, "nodeagent-bench-")
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() { removeCgroupTree(root) })
	f := benchFixture(benchPods)
	for _, cg := range f.cgroups {
		if err := os.MkdirAll(filepath.Join(root, cg.path), 0o755); err != nil {
			b.Fatal(err)
		}
	}
	dirs := benchCgroupDirs(b, root)
	paths := existingFiles(dirs, servedFileNames())
	for _, bc := range []struct {
		name string
		args []string
	}{{"default", nil}, {"no-files-cached", []string{"--collector.cadvisor.max-open-files=0"}}} {
		c := buildCadvisor(b, collectors.Env{Paths: collectors.Paths{CgroupFS: root}, Now: time.Now}, bc.args...)
		if _, err := c.UpdateFamilies(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Run("scrape/"+bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				mfs, err := c.UpdateFamilies(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				enc := expfmt.NewEncoder(io.Discard, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, mf := range mfs {
					_ = enc.Encode(mf)
				}
			}
			b.ReportMetric(float64(len(dirs)), "cgroups")
			b.ReportMetric(float64(c.budget.Open()), "open-fds")
		})
		closeGroups(c)
	}
	for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
		b.Run(fmt.Sprintf("raw/workers=%d", workers), func(b *testing.B) {
			for b.Loop() {
				readFilesRaw(paths, workers)
			}
			b.ReportMetric(float64(len(paths)), "files")
		})
	}
}

// TestWriteBenchTree writes the benchmark node to $NODEAGENT_WRITE_BENCH_TREE,
// to run the binary over it (docs/performance.md, make perf), with
// $NODEAGENT_WRITE_BENCH_PODS pods of 4 containers (250 unless set):
//
//	NODEAGENT_WRITE_BENCH_TREE=/dev/shm/node go test ./collectors/cadvisor -run TestWriteBenchTree
func TestWriteBenchTree(t *testing.T) {
	dir := os.Getenv("NODEAGENT_WRITE_BENCH_TREE")
	if dir == "" {
		t.Skip("set NODEAGENT_WRITE_BENCH_TREE to write the benchmark tree")
	}
	pods := benchPods
	if v := os.Getenv("NODEAGENT_WRITE_BENCH_PODS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("NODEAGENT_WRITE_BENCH_PODS=%q: want a number of pods", v)
		}
		pods = n
	}
	benchFixture(pods).write(t, dir)
}

// countingResponse is an http.ResponseWriter that counts and drops the
// body, so that a benchmark measures writing the answer, not keeping it.
type countingResponse struct {
	header http.Header
	n      int
}

func (w *countingResponse) Header() http.Header { return w.header }
func (w *countingResponse) WriteHeader(int)     {}
func (w *countingResponse) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}
