package node

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// textfileCases are the fixture directories under testdata/textfile. Their
// output contains file paths and mtimes, so they are not golden cases of
// TestGoldenCases: TestTextfileGolden compares them with a fixed mtime and
// TestNodeExporterConformanceTextfile with node_exporter live, over the same
// files.
var textfileCases = []struct {
	name string
	dirs []string // --collector.textfile.directory values, relative to the package
	// ignore lists families that differ from node_exporter on purpose.
	ignore map[string]string
}{
	{name: "good", dirs: []string{"testdata/textfile/good"}},
	{name: "conflict-help", dirs: []string{"testdata/textfile/conflict-help"}},
	{name: "duplicate-series", dirs: []string{"testdata/textfile/duplicate-series"}, ignore: map[string]string{
		"node_textfile_scrape_error": "node_exporter only logs the series its registry drops; we also set the error",
	}},
	{name: "type-conflict", dirs: []string{"testdata/textfile/type-conflict"}, ignore: map[string]string{
		"node_textfile_scrape_error": "node_exporter only logs the series its registry drops; we also set the error",
	}},
	{name: "help-missing-first", dirs: []string{"testdata/textfile/help-missing-first"}, ignore: map[string]string{
		"node_textfile_scrape_error": "node_exporter only logs the series its registry drops; we also set the error",
	}},
	{name: "timestamps", dirs: []string{"testdata/textfile/timestamps"}},
	{name: "bad-line", dirs: []string{"testdata/textfile/bad-line"}},
	{name: "labels", dirs: []string{"testdata/textfile/labels"}},
	{name: "glob", dirs: []string{"testdata/textfile/glob/*"}},
	{name: "two-directories", dirs: []string{"testdata/textfile/good", "testdata/textfile/labels"}},
	{name: "missing-directory", dirs: []string{"testdata/textfile/does-not-exist"}},
	{name: "no-directory", dirs: nil},
}

func textfileArgs(dirs []string) []string {
	var args []string
	for _, d := range dirs {
		args = append(args, "--collector.textfile.directory="+d)
	}
	return args
}

// newTestTextfile builds the textfile collector through its flags, with a
// fixed mtime.
func newTestTextfile(t *testing.T, logger *slog.Logger, dirs ...string) *textfileCollector {
	t.Helper()
	env := collectortest.TempEnv(t, t.TempDir())
	if logger != nil {
		env.Logger = logger
	}
	c, err := collectortest.Build(t, "textfile", env, textfileArgs(dirs)...)
	if err != nil {
		t.Fatal(err)
	}
	tc := c.(*textfileCollector)
	tc.modTime = func(os.FileInfo) time.Time { return time.Unix(1700000000, 0) }
	return tc
}

func TestTextfileGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range textfileCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			collectortest.CompareCollectorGolden(t, newTestTextfile(t, nil, tc.dirs...), filepath.Join("testdata", "textfile", tc.name+".golden.prom"))
		})
	}
}

// TestTextfileFilesComeAndGo: a file that appears between scrapes is
// served from the next scrape on, one that disappears no longer is, and
// neither is an error.
func TestTextfileFilesComeAndGo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		// Written elsewhere and renamed in, as textfile writers should.
		tmp := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	c := newTestTextfile(t, nil, dir)
	scrape := func() string { return collectortest.MustExposition(t, c) }
	write("a.prom", "first_metric 1\n")
	got := scrape()
	for _, want := range []string{"first_metric 1", `file="` + filepath.Join(dir, "a.prom") + `"`, "node_textfile_scrape_error 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape 1 lacks %q:\n%s", want, got)
		}
	}
	write("b.prom", "second_metric 2\n")
	got = scrape()
	for _, want := range []string{"first_metric 1", "second_metric 2", filepath.Join(dir, "b.prom"), "node_textfile_scrape_error 0"} {
		if !strings.Contains(got, want) {
			t.Errorf("scrape 2 lacks %q:\n%s", want, got)
		}
	}
	if err := os.Remove(filepath.Join(dir, "a.prom")); err != nil {
		t.Fatal(err)
	}
	got = scrape()
	for _, gone := range []string{"first_metric", filepath.Join(dir, "a.prom")} {
		if strings.Contains(got, gone) {
			t.Errorf("scrape 3 still serves %q after the file was removed:\n%s", gone, got)
		}
	}
	if !strings.Contains(got, "second_metric 2") || !strings.Contains(got, "node_textfile_scrape_error 0") {
		t.Errorf("scrape 3:\n%s", got)
	}
}

// TestTextfileErrorsAreLoggedOnce: a bad file and a missing directory are
// logged with their path at error level when they first fail, at debug
// level while they stay broken, and their recovery is logged.
func TestTextfileErrorsAreLoggedOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	missing := filepath.Join(t.TempDir(), "gone")
	bad := filepath.Join(dir, "bad.prom")
	if err := os.WriteFile(bad, []byte("broken{ 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "good.prom"), []byte("fine 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	c := newTestTextfile(t, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})), dir, missing)

	scrape := func() string {
		t.Helper()
		logs.Reset()
		out, err := collectortest.Exposition(t, c)
		if err != nil {
			t.Fatalf("a bad file must not fail the collector: %v", err)
		}
		return string(out)
	}
	out := scrape()
	if !strings.Contains(out, "node_textfile_scrape_error 1") || !strings.Contains(out, "fine 1") {
		t.Errorf("want the good file served and the error set:\n%s", out)
	}
	for _, want := range []string{"level=ERROR", "file=" + bad, "file=" + missing, "parsing textfile"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("first scrape's log lacks %q:\n%s", want, logs.String())
		}
	}
	scrape()
	if logs.Len() != 0 {
		t.Errorf("unchanged errors were logged again above debug level:\n%s", logs.String())
	}
	if err := os.Remove(bad); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(missing, 0o755); err != nil {
		t.Fatal(err)
	}
	if out := scrape(); !strings.Contains(out, "node_textfile_scrape_error 0") {
		t.Errorf("errors fixed, want node_textfile_scrape_error 0:\n%s", out)
	}
	if !strings.Contains(logs.String(), "read without errors again") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

// TestNodeExporterConformanceTextfile runs node_exporter and the textfile
// collector over the same files with the same flags (relative paths, so
// the file labels agree) and compares the families, values included.
func TestNodeExporterConformanceTextfile(t *testing.T) {
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	for _, tc := range textfileCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := textfileArgs(tc.dirs)
			theirs := collectortest.RunNodeExporter(t, bin, collectortest.Case{Collector: "textfile", Dir: t.TempDir(), Args: args})
			c, err := collectortest.Build(t, "textfile", collectortest.TempEnv(t, t.TempDir()), args...)
			if err != nil {
				t.Fatal(err)
			}
			out, err := collectortest.Exposition(t, c)
			if err != nil {
				t.Fatal(err)
			}
			rules := &collectortest.Rules{}
			for name, why := range tc.ignore {
				rules.IgnoreFamily(name, why)
			}
			ours := collectortest.Parse(t, out)
			tally := collectortest.CompareFamilies(t, ours, theirs, rules)
			if tally.Series == 0 && len(ours)+len(theirs) > 0 {
				t.Errorf("compared no series: %s", tally)
			}
			t.Log(tally)
		})
	}
}

// FuzzTextfile feeds arbitrary content as two files: the collector must
// never fail or panic, and its output must always be consistent (exposition
// fails the test on duplicate series or mixed help and types).
func FuzzTextfile(f *testing.F) {
	seeds, err := filepath.Glob("testdata/textfile/*/*.prom")
	if err != nil {
		f.Fatal(err)
	}
	for i, s := range seeds {
		a, errA := os.ReadFile(s)
		b, errB := os.ReadFile(seeds[(i+1)%len(seeds)])
		if errA != nil || errB != nil {
			f.Fatal(errA, errB)
		}
		f.Add(string(a), string(b))
	}
	f.Add("m{a=\"\xff\"} 1\n", "m 2\n")
	f.Add("h_count 1\n", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 1\n")
	f.Add("s{quantile=\"x\"} 1\n", "# TYPE s summary\ns{quantile=\"0.5\"} 1\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		dir := t.TempDir()
		for name, content := range map[string]string{"a.prom": a, "b.prom": b} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		c := newTextfileCollector(collectors.Env{Logger: slog.New(slog.DiscardHandler)}, textfileConfig{directories: []string{dir}})
		if _, err := collectortest.Exposition(t, c); err != nil {
			t.Fatalf("Update failed: %v", err)
		}
	})
}
