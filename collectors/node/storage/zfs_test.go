package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The fixture cases (OpenZFS 2.2 with two pools and a dataset name with a
// space; ZFS on Linux 0.8 with per-pool io kstats and a suspended pool; a
// pool named "data"; the module without pools; no module; a malformed
// kstat and io file) are golden cases in testdata/zfs.

func TestParseZFSKstats(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      string
		want    []zfsKstat
		wantErr string
	}{
		{
			name: "named kstat",
			in: "13 1 0x01 3 144 3624632231 5836101392417\n" +
				"name                            type data\n" +
				"hits                            4    10286925\n" +
				"memory_available_bytes          3    -1\n" +
				"dataset_name                    7    tank/home user\n",
			want: []zfsKstat{
				{name: "hits", typ: "4", value: "10286925", data: "10286925"},
				{name: "memory_available_bytes", typ: "3", value: "-1", data: "-1"},
				{name: "dataset_name", typ: "7", value: "tank/home", data: "tank/home user"},
			},
		},
		{
			name: "lines before the header and short lines are skipped",
			in:   "hits 4 1\nname type data\n\nshort 4\nmisses 4 2\n",
			want: []zfsKstat{{name: "misses", typ: "4", value: "2", data: "2"}},
		},
		{name: "header only", in: "0 1 0x01 0 0 1 2\nname type data\n"},
		{name: "no header", in: "hits 4 1\n", wantErr: "no \"name type data\" header"},
		{name: "empty", in: "", wantErr: "no \"name type data\" header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseZFSKstats([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(zfsKstat{})); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func TestZFSKstatNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		k      zfsKstat
		want   float64
		ok     bool
		hasErr bool
	}{
		{zfsKstat{typ: "4", value: "18446744073709551615"}, 18446744073709551615, true, false},
		{zfsKstat{typ: "3", value: "-268435456"}, -268435456, true, false},
		{zfsKstat{typ: "4", value: "-1"}, 0, false, true},
		{zfsKstat{typ: "3", value: "x"}, 0, false, true},
		{zfsKstat{typ: "7", value: "tank"}, 0, false, false},
		{zfsKstat{typ: "1", value: "5"}, 0, false, false}, // int32: not served, as node_exporter
	} {
		got, ok, err := tc.k.number()
		if got != tc.want || ok != tc.ok || (err != nil) != tc.hasErr {
			t.Errorf("%+v: got %v, %v, %v", tc.k, got, ok, err)
		}
	}
}

func TestParseZFSPoolIO(t *testing.T) {
	t.Parallel()
	const header = "12 3 0x00 1 80 2225326830 47456452424446\nnread nwritten reads writes wtime wlentime wupdate rtime rlentime rupdate wcnt rcnt\n"
	names := []string{"nread", "nwritten", "reads", "writes", "wtime", "wlentime", "wupdate", "rtime", "rlentime", "rupdate", "wcnt", "rcnt"}
	var want []zfsIOField
	for i, n := range names {
		want = append(want, zfsIOField{name: n, value: uint64(i + 1)})
	}
	for _, tc := range []struct {
		name    string
		in      string
		want    []zfsIOField
		wantErr string
	}{
		{name: "values", in: header + "1 2 3 4 5 6 7 8 9 10 11 12\n", want: want},
		{name: "only the first values line", in: header + "1 2 3 4 5 6 7 8 9 10 11 12\n9 9 9 9 9 9 9 9 9 9 9 9\n", want: want},
		{name: "too few values", in: header + "1 2 3\n", wantErr: "3 values for 12 columns"},
		{name: "blank line instead of values", in: header + "\n", wantErr: "0 values for 12 columns"},
		{name: "not a number", in: header + "1 2 x 4 5 6 7 8 9 10 11 12\n", want: want[:2], wantErr: "column reads"},
		{name: "no header", in: "1 2 3 4 5 6 7 8 9 10 11 12\n"},
		{name: "header without values", in: header},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseZFSPoolIO([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(zfsIOField{})); diff != "" {
				t.Errorf("-want +got:\n%s", diff)
			}
		})
	}
}

func FuzzParseZFSKstats(f *testing.F) {
	f.Add([]byte("13 1 0x01 2 96 1 2\nname type data\nhits 4 10\ndataset_name 7 tank/a b\n"))
	f.Add([]byte("name type data\n\t\t4 5 6\n"))
	f.Add([]byte("name type data\na\rb c d\n\u00a0x\u00857 y z\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		kstats, err := parseZFSKstats(b)
		if err != nil {
			return
		}
		for _, k := range kstats {
			if k.name == "" || k.typ == "" || k.value == "" {
				t.Errorf("empty field in %+v", k)
			}
			if !strings.HasPrefix(k.data, k.value) {
				t.Errorf("data %q does not start with the value %q", k.data, k.value)
			}
			_, _, _ = k.number()
		}
	})
}

func FuzzParseZFSPoolIO(f *testing.F) {
	f.Add([]byte("12 3 0x00 1 80 1 2\nnread nwritten reads writes wtime wlentime wupdate rtime rlentime rupdate wcnt rcnt\n1 2 3 4 5 6 7 8 9 10 11 12\n"))
	f.Add([]byte("nread a b c d e f g h i j k l\n1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, err := parseZFSPoolIO(b)
		if err == nil && len(fields) != 0 && len(fields) < 12 {
			t.Errorf("%d columns without an error", len(fields))
		}
	})
}

// TestZFSPoolExported: a pool exported between scrapes disappears from the
// next one; one exported during a scrape (its kstats listed, then gone) is
// skipped without an error.
func TestZFSPoolExported(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "zfs/good")
	c := collectortest.MustBuildFixture(t, "zfs", dir)
	if out, err := collectortest.Exposition(t, c); err != nil || !strings.Contains(string(out), `zpool="backup"`) {
		t.Fatalf("first scrape: error %v", err)
	}
	collectortest.RemoveFile(t, dir, "proc/spl/kstat/zfs/backup")
	// tank's kstats go away under the scrape: the listing finds them, the
	// read does not.
	tank := filepath.Join(dir, "proc/spl/kstat/zfs/tank")
	for _, f := range []string{"state", "objset-0x36"} {
		collectortest.RemoveFile(t, tank, f)
		if err := os.Symlink("exported", filepath.Join(tank, f)); err != nil {
			t.Fatal(err)
		}
	}
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatalf("second scrape: %v", err)
	}
	got := string(out)
	if strings.Contains(got, `zpool="backup"`) || strings.Contains(got, `node_zfs_zpool_state{state="online",zpool="tank"}`) ||
		strings.Contains(got, `dataset="tank",`) {
		t.Errorf("series of exported kstats served:\n%s", got)
	}
	if !strings.Contains(got, `dataset="tank/k8s"`) || !strings.Contains(got, "node_zfs_arc_hits ") {
		t.Errorf("the remaining kstats are missing")
	}

	collectortest.RemoveFile(t, dir, "proc/spl")
	if _, err := collectortest.Exposition(t, c); !errors.Is(err, collectors.ErrNoData) {
		t.Errorf("module unloaded: want ErrNoData, got %v", err)
	}
}

// TestNodeExporterConformanceZFSPoolNamedData pins down the difference that
// testdata/zfs/pool-named-data.conformance excuses.
func TestNodeExporterConformanceZFSPoolNamedData(t *testing.T) {
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	t.Parallel()
	dir, err := filepath.Abs("testdata/zfs/pool-named-data")
	if err != nil {
		t.Fatal(err)
	}
	theirs := collectortest.ScrapeNodeExporter(t, bin, []string{
		"--web.listen-address=127.0.0.1:0", "--collector.disable-defaults", "--collector.zfs",
		"--path.procfs=" + filepath.Join(dir, "proc"),
	})
	ours := collectortest.Parse(t, collectortest.ReadFile(t, "testdata/zfs/pool-named-data.prom"))
	datasets := func(mfs map[string]*dto.MetricFamily) []string {
		var out []string
		for _, m := range mfs["node_zfs_zpool_dataset_writes"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "dataset" {
					out = append(out, l.GetValue())
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if diff := cmp.Diff([]string{"data", "data/set"}, datasets(ours)); diff != "" {
		t.Errorf("nodeagent's datasets (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"data/set", "dataset_name                    7    data"}, datasets(theirs)); diff != "" {
		t.Errorf("node_exporter's datasets changed (-want +got):\n%s", diff)
	}
}
