package collectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkGoldenCases measures one Update of each collector over its
// "good" golden case (fixture files in the page cache), draining the
// metrics as the Scraper does. It is the per-collector cost of a scrape
// without the registry's merge.
func BenchmarkGoldenCases(b *testing.B) {
	for _, c := range goldenCases(b) {
		if !strings.HasSuffix(c.name, "/good") {
			continue
		}
		b.Run(c.collector, func(b *testing.B) {
			env := envAt(b, c.dir)
			env.Logger = slog.New(slog.DiscardHandler)
			col, err := buildCollectorEnv(b, c.collector, env, c.args...)
			if err != nil {
				b.Fatal(err)
			}
			benchUpdate(b, col)
		})
	}
}

// BenchmarkZFSManyDatasets: a storage node with one pool of 1,000 datasets
// (OpenZFS 2.2 objset kstats, 13 counters each) beside the usual kstat
// files, about 13,300 series per scrape.
func BenchmarkZFSManyDatasets(b *testing.B) {
	dir := b.TempDir()
	writeZFSTree(b, dir, 1000)
	env := envAt(b, dir)
	env.Logger = slog.New(slog.DiscardHandler)
	col, err := buildCollectorEnv(b, "zfs", env)
	if err != nil {
		b.Fatal(err)
	}
	benchUpdate(b, col)
}

// benchUpdate runs c as the Scraper does: UpdateFamilies for a
// FamilyCollector, else Update with the metrics drained from the channel.
func benchUpdate(b *testing.B, c Collector) {
	b.ReportAllocs()
	series := 0
	if fc, ok := c.(FamilyCollector); ok {
		for b.Loop() {
			mfs, err := fc.UpdateFamilies(context.Background())
			if err != nil && !errors.Is(err, ErrNoData) {
				b.Fatal(err)
			}
			series = 0
			for _, mf := range mfs {
				series += len(mf.GetMetric())
			}
		}
		b.ReportMetric(float64(series), "series/op")
		return
	}
	for b.Loop() {
		ch := make(chan prometheus.Metric, 256)
		done := make(chan int)
		go func() {
			n := 0
			for range ch {
				n++
			}
			done <- n
		}()
		if err := c.Update(context.Background(), ch); err != nil && !errors.Is(err, ErrNoData) {
			b.Fatal(err)
		}
		close(ch)
		series = <-done
	}
	b.ReportMetric(float64(series), "series/op")
}

// writeZFSTree writes an OpenZFS 2.2-like /proc/spl/kstat/zfs below dir/proc
// with one pool of the given number of datasets.
func writeZFSTree(tb testing.TB, dir string, datasets int) {
	tb.Helper()
	base := filepath.Join(dir, "proc/spl/kstat/zfs")
	write := func(rel, content string) {
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	kstat := func(prefix string, n int) string {
		var s strings.Builder
		s.WriteString("13 1 0x01 0 0 3624632231 5836101392417\nname                            type data\n")
		for i := range n {
			fmt.Fprintf(&s, "%-31s %-4s %d\n", fmt.Sprintf("%s_%d", prefix, i), "4", i*7919)
		}
		return s.String()
	}
	for file, n := range map[string]int{"arcstats": 140, "abdstats": 13, "dbufstats": 23, "dmu_tx": 13,
		"dnodestats": 28, "fm": 4, "vdev_mirror_stats": 7, "zfetchstats": 12, "zil": 20} {
		write(file, kstat(file, n))
	}
	write("tank/state", "ONLINE\n")
	objset := []string{"writes", "nwritten", "reads", "nread", "nunlinks", "nunlinked", "zil_commit_count",
		"zil_commit_writer_count", "zil_itx_count", "zil_itx_indirect_count", "zil_itx_indirect_bytes",
		"zil_itx_copied_count", "zil_itx_copied_bytes"}
	for d := range datasets {
		var s strings.Builder
		s.WriteString("49 1 0x01 14 2160 6165792836 1335024155232\nname                            type data\n")
		fmt.Fprintf(&s, "%-31s %-4s tank/k8s/pvc-%08d\n", "dataset_name", "7", d)
		for i, k := range objset {
			fmt.Fprintf(&s, "%-31s %-4s %d\n", k, "4", d*100+i)
		}
		write(fmt.Sprintf("tank/objset-0x%x", 0x36+d), s.String())
	}
}
