package storage

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// BenchmarkZFSManyDatasets: a storage node with one pool of 1,000 datasets
// (OpenZFS 2.2 objset kstats, 13 counters each) beside the usual kstat
// files, about 13,300 series per scrape.
func BenchmarkZFSManyDatasets(b *testing.B) {
	dir := b.TempDir()
	writeZFSTree(b, dir, 1000)
	env := collectortest.Env(b, dir)
	env.Logger = slog.New(slog.DiscardHandler)
	col, err := collectortest.Build(b, "zfs", env)
	if err != nil {
		b.Fatal(err)
	}
	collectortest.BenchUpdate(b, col)
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
