package collectors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// A golden case is a fixture tree plus files beside it, all under
// testdata/<collector>/:
//
//	<case>/              proc/, sys/, root/, udev/, cgroup/ as the collector needs
//	<case>.prom          the exact exposition the collector must produce
//	<case>.args          optional: the collector's flags, one per line;
//	                     {case} stands for the case directory's absolute path
//	<case>.err           optional: Update must fail with an error containing this
//	                     text (the .prom then holds what was still served)
//	<case>.conformance   optional, node layer only: deliberate differences from
//	                     node_exporter, one directive per line (see below)
//
// TestGoldenCases builds each collector through its registration and flags,
// exactly as the binary does, and compares. TestNodeExporterConformance runs
// node_exporter over the same trees with the same flags and compares too.
type goldenCase struct {
	collector string
	name      string // <collector>/<case>
	dir       string // absolute path of the fixture tree
	golden    string
	args      []string
	wantErr   string
}

func goldenCases(t testing.TB) []goldenCase {
	t.Helper()
	files, err := filepath.Glob("testdata/*/*.prom")
	if err != nil {
		t.Fatal(err)
	}
	var out []goldenCase
	for _, golden := range files {
		dir := strings.TrimSuffix(golden, ".prom")
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue // a golden file of a hand-written test
		}
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		collector := filepath.Base(filepath.Dir(dir))
		c := goldenCase{collector: collector, name: collector + "/" + filepath.Base(dir), dir: abs, golden: golden}
		if b, err := os.ReadFile(dir + ".args"); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					c.args = append(c.args, strings.ReplaceAll(line, "{case}", abs))
				}
			}
		}
		if b, err := os.ReadFile(dir + ".err"); err == nil {
			c.wantErr = strings.TrimSpace(string(b))
		}
		out = append(out, c)
	}
	return out
}

// buildFromFlags builds the named collector through its registration with a
// fresh flag set parsed from args, over the case's fixture tree.
func buildFromFlags(t *testing.T, c goldenCase) Collector {
	t.Helper()
	reg, ok := Lookup(c.collector)
	if !ok {
		t.Fatalf("testdata/%s: no collector named %q is registered", c.name, c.collector)
	}
	app := kingpin.New("test", "")
	factory := reg.Setup(app)
	if _, err := app.Parse(c.args); err != nil {
		t.Fatalf("parsing %s.args: %v", c.name, err)
	}
	rel, err := filepath.Rel(mustAbs(t, "testdata"), c.dir)
	if err != nil {
		t.Fatal(err)
	}
	col, err := factory(fixtureEnv(t, rel))
	if err != nil {
		t.Fatalf("building %s: %v", c.collector, err)
	}
	return col
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestGoldenCases(t *testing.T) {
	t.Parallel()
	cases := goldenCases(t)
	if len(cases) == 0 {
		t.Fatal("no golden cases found")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := exposition(t, buildFromFlags(t, c))
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("Update: %v", err)
			case c.wantErr != "" && err == nil:
				t.Fatalf("Update succeeded; want an error containing %q", c.wantErr)
			case c.wantErr != "" && !strings.Contains(err.Error(), c.wantErr):
				t.Fatalf("Update error %q does not contain %q", err, c.wantErr)
			}
			if *update {
				if err := os.WriteFile(c.golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(c.golden)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("exposition differs from %s (-want +got):\n%s", c.golden, diff)
			}
		})
	}
}

// Directives of a <case>.conformance file, each followed by "# reason":
//
//	ignore-family <name>    the family differs or exists on one side only, on purpose
//	ignore-help <name>      only the HELP text differs
var directiveRE = regexp.MustCompile(`^(ignore-family|ignore-help)\s+(\S+)\s+#\s*\S`)

type conformanceRules struct {
	ignoreFamily, ignoreHelp map[string]bool
}

func readConformanceRules(t *testing.T, path string) conformanceRules {
	t.Helper()
	r := conformanceRules{ignoreFamily: map[string]bool{}, ignoreHelp: map[string]bool{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return r
	}
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := directiveRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s:%d: want `ignore-family|ignore-help <name> # reason`, got %q", path, i+1, line)
		}
		if m[1] == "ignore-family" {
			r.ignoreFamily[m[2]] = true
		} else {
			r.ignoreHelp[m[2]] = true
		}
	}
	return r
}

// nodeExporterOwn are node_exporter's families about itself, not the host.
var nodeExporterOwn = regexp.MustCompile(`^(go_|process_|promhttp_|node_exporter_|node_scrape_collector_)`)

// TestNodeExporterConformance runs node_exporter 1.12.1 over every node-layer
// golden case with the same flags and requires the same families, types,
// help, label sets and values, except where the case's .conformance file
// declares a deliberate difference. `make node-conformance` builds
// node_exporter from the module proxy (as a measuring stick only, never a
// dependency) and sets NODE_EXPORTER_BIN.
func TestNodeExporterConformance(t *testing.T) {
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	ran := 0
	for _, c := range goldenCases(t) {
		reg, ok := Lookup(c.collector)
		if !ok || reg.Layer != LayerNode || c.wantErr != "" {
			continue
		}
		ran++
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			theirs := runNodeExporter(t, bin, c)
			ours := parseExposition(t, mustRead(t, c.golden))
			rules := readConformanceRules(t, strings.TrimSuffix(c.golden, ".prom")+".conformance")
			compareFamilies(t, ours, theirs, rules)
		})
	}
	if ran == 0 {
		t.Fatal("no node-layer golden cases")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseExposition(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatalf("parsing exposition: %v", err)
	}
	return mfs
}

var listeningRE = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// runNodeExporter starts node_exporter with only c's collector over c's
// fixture tree and returns its host families.
func runNodeExporter(t *testing.T, bin string, c goldenCase) map[string]*dto.MetricFamily {
	t.Helper()
	args := []string{
		"--web.listen-address=127.0.0.1:0",
		"--collector.disable-defaults", "--collector." + c.collector,
		"--path.procfs=" + filepath.Join(c.dir, "proc"),
		"--path.sysfs=" + filepath.Join(c.dir, "sys"),
		"--path.rootfs=" + filepath.Join(c.dir, "root"),
		"--path.udev.data=" + filepath.Join(c.dir, "udev"),
	}
	args = append(args, c.args...)
	return scrapeNodeExporter(t, bin, args)
}

// scrapeNodeExporter starts node_exporter with args (which must include
// --web.listen-address=127.0.0.1:0), scrapes it once and returns its host
// families.
func scrapeNodeExporter(t *testing.T, bin string, args []string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var logs strings.Builder
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		close(addr)
	}()
	a, ok := <-addr
	if !ok {
		t.Fatalf("node_exporter %v did not start:\n%s", args, logs.String())
	}
	resp, err := http.Get("http://" + a + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	all := parseExposition(t, body)
	for name := range all {
		if nodeExporterOwn.MatchString(name) {
			delete(all, name)
		}
	}
	return all
}

// compareFamilies reports every difference between our families and
// node_exporter's that the rules do not excuse.
func compareFamilies(t *testing.T, ours, theirs map[string]*dto.MetricFamily, rules conformanceRules) {
	t.Helper()
	for name := range ours {
		if strings.HasPrefix(name, "nodeagent_") || rules.ignoreFamily[name] {
			continue
		}
		if _, ok := theirs[name]; !ok {
			t.Errorf("%s: served by nodeagent, not by node_exporter", name)
		}
	}
	for name, theirMF := range theirs {
		if rules.ignoreFamily[name] {
			continue
		}
		ourMF, ok := ours[name]
		if !ok {
			t.Errorf("%s: served by node_exporter, not by nodeagent", name)
			continue
		}
		if ourMF.GetType() != theirMF.GetType() {
			t.Errorf("%s: type %s, node_exporter %s", name, ourMF.GetType(), theirMF.GetType())
		}
		if !rules.ignoreHelp[name] && ourMF.GetHelp() != theirMF.GetHelp() {
			t.Errorf("%s: help %q, node_exporter %q", name, ourMF.GetHelp(), theirMF.GetHelp())
		}
		if diff := cmp.Diff(seriesOf(theirMF), seriesOf(ourMF)); diff != "" {
			t.Errorf("%s: series differ (-node_exporter +nodeagent):\n%s", name, diff)
		}
	}
}

// seriesOf renders each series as `{labels} value` for comparison.
func seriesOf(mf *dto.MetricFamily) map[string]string {
	out := map[string]string{}
	for _, m := range mf.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
		slices.Sort(labels)
		var v float64
		switch {
		case m.Gauge != nil:
			v = m.GetGauge().GetValue()
		case m.Counter != nil:
			v = m.GetCounter().GetValue()
		case m.Untyped != nil:
			v = m.GetUntyped().GetValue()
		case m.Summary != nil:
			v = float64(m.GetSummary().GetSampleCount())
		case m.Histogram != nil:
			v = float64(m.GetHistogram().GetSampleCount())
		}
		val := fmt.Sprint(v)
		if math.IsNaN(v) {
			val = "NaN"
		}
		out["{"+strings.Join(labels, ",")+"}"] = val
	}
	return out
}
