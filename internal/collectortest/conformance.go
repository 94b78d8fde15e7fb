package collectortest

import (
	"bufio"
	"context"
	"debug/buildinfo"
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
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
)

// NodeExporterVersion is the node_exporter release the host collectors
// conform to; `make node-conformance` builds it from the module proxy as a
// measuring stick (never a dependency) and sets NODE_EXPORTER_BIN.
const NodeExporterVersion = "1.12.1"

var nodeExporterChecked sync.Map // binary path → error of its version check

// NodeExporterBin returns the node_exporter binary named by
// NODE_EXPORTER_BIN, after checking that it is NodeExporterVersion. Without
// the variable the test is skipped: `make test` runs the conformance
// through `make node-conformance`, which sets it.
func NodeExporterBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	v, _ := nodeExporterChecked.LoadOrStore(bin, sync.OnceValue(func() error {
		// go install sets no version flags, so the module version the
		// binary was built from is what tells.
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			return fmt.Errorf("NODE_EXPORTER_BIN: %w", err)
		}
		if info.Main.Path != "github.com/prometheus/node_exporter" || info.Main.Version != "v"+NodeExporterVersion {
			return fmt.Errorf("NODE_EXPORTER_BIN %s is %s %s, not node_exporter v%s", bin, info.Main.Path, info.Main.Version, NodeExporterVersion)
		}
		return nil
	}))
	if err := v.(func() error)(); err != nil {
		t.Fatal(err)
	}
	return bin
}

// Rules are a golden case's deliberate differences from node_exporter, read
// from its .conformance file: one directive per line, each followed by
// "# reason".
//
//	ignore-family <name>          the family exists on one side only, on purpose
//	ignore-help <name>            only the HELP text differs
//	ignore-series <family-regexp> [<label>=~<regexp> ...]
//	                              these series differ, or exist on one side
//	                              only; the family's other series, its type
//	                              and help are still compared
//	ignore-label <family-regexp> <label>
//	                              the label's value differs (a path given to
//	                              each differently); series are compared
//	                              without it
//	compares-nothing              the case pins a difference only: no series
//	                              is left to compare, and that is expected
//	skip                          node_exporter cannot be pointed at this
//	                              fixture (it reads fixed paths): the case is
//	                              skipped, and the reason shown
//
// Regular expressions are anchored. Every directive must match something,
// or the comparison fails: a stale excuse would hide a regression.
type Rules struct {
	directives      []*directive
	comparesNothing string // the reason, when the case compares nothing on purpose
	skip            string // the reason, when node_exporter cannot read the fixture
	// Volatile matches families whose values change from one moment to the
	// next (host comparisons): their series are compared by labels only.
	Volatile *regexp.Regexp
}

type directive struct {
	kind   string // ignore-family, ignore-help, ignore-series
	family *regexp.Regexp
	labels map[string]*regexp.Regexp // ignore-series
	label  string                    // ignore-label
	text   string                    // the line, for messages
	used   bool
}

var directiveRE = regexp.MustCompile(`^(ignore-family|ignore-help|ignore-series|ignore-label|compares-nothing|skip)\s*([^#]*?)\s*#\s*(\S.*)$`)

// ReadRules reads a .conformance file; a missing file is no rules.
func ReadRules(t testing.TB, path string) *Rules {
	t.Helper()
	r := &Rules{}
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
			t.Fatalf("%s:%d: want `ignore-family|ignore-help <name> # reason` or `ignore-series <family-regexp> [<label>=~<regexp>...] # reason`, got %q", path, i+1, line)
		}
		fields := strings.Fields(m[2])
		d := &directive{kind: m[1], text: fmt.Sprintf("%s:%d: %s", filepath.Base(path), i+1, line)}
		switch {
		case d.kind == "compares-nothing" || d.kind == "skip":
			if len(fields) != 0 {
				t.Fatalf("%s:%d: %s takes no arguments", path, i+1, d.kind)
			}
			if d.kind == "skip" {
				r.skip = m[3]
			} else {
				r.comparesNothing = m[3]
			}
			continue
		case d.kind == "ignore-label":
			if len(fields) != 2 {
				t.Fatalf("%s:%d: want ignore-label <family-regexp> <label>", path, i+1)
			}
			d.family, d.label = anchored(t, fields[0]), fields[1]
		case d.kind != "ignore-series" && len(fields) != 1:
			t.Fatalf("%s:%d: %s takes one family name", path, i+1, d.kind)
		case d.kind == "ignore-series":
			d.labels = map[string]*regexp.Regexp{}
			for _, f := range fields[1:] {
				name, re, ok := strings.Cut(f, "=~")
				if !ok {
					t.Fatalf("%s:%d: want <label>=~<regexp>, got %q", path, i+1, f)
				}
				d.labels[name] = anchored(t, re)
			}
			d.family = anchored(t, fields[0])
		default:
			d.family = anchored(t, regexp.QuoteMeta(fields[0]))
		}
		r.directives = append(r.directives, d)
	}
	return r
}

// IgnoreFamily adds an ignore-family rule: name exists on one side only,
// on purpose (why).
func (r *Rules) IgnoreFamily(name, why string) {
	r.directives = append(r.directives, &directive{
		kind: "ignore-family", family: regexp.MustCompile("^" + regexp.QuoteMeta(name) + "$"),
		text: "ignore-family " + name + " # " + why,
	})
}

func anchored(t testing.TB, re string) *regexp.Regexp {
	t.Helper()
	c, err := regexp.Compile("^(?:" + re + ")$")
	if err != nil {
		t.Fatalf("conformance rule: %v", err)
	}
	return c
}

func (r *Rules) find(kind, family string) *directive {
	for _, d := range r.directives {
		if d.kind == kind && d.family.MatchString(family) {
			return d
		}
	}
	return nil
}

// ignoredSeries reports whether an ignore-series directive covers m of
// family, marking the directive used.
func (r *Rules) ignoredSeries(family string, m *dto.Metric) bool {
	for _, d := range r.directives {
		if d.kind != "ignore-series" || !d.family.MatchString(family) {
			continue
		}
		match := true
		for name, re := range d.labels {
			if !re.MatchString(labelValue(m, name)) {
				match = false
				break
			}
		}
		if match {
			d.used = true
			return true
		}
	}
	return false
}

// ignoredLabel reports whether an ignore-label directive drops label from
// family's series, marking the directive used.
func (r *Rules) ignoredLabel(family, label string) bool {
	for _, d := range r.directives {
		if d.kind == "ignore-label" && d.label == label && d.family.MatchString(family) {
			d.used = true
			return true
		}
	}
	return false
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// Tally is what a comparison compared.
type Tally struct {
	Families, Series int // compared
	IgnoredFamilies  int // left out by ignore-family
	IgnoredSeries    int // left out by ignore-series
}

func (c Tally) String() string {
	return fmt.Sprintf("%d families and %d series compared; %d families and %d series ignored by rules",
		c.Families, c.Series, c.IgnoredFamilies, c.IgnoredSeries)
}

// CompareFamilies reports every difference between our families and
// node_exporter's that the rules do not excuse, and every rule that
// excused nothing, and returns what it compared.
func CompareFamilies(t testing.TB, ours, theirs map[string]*dto.MetricFamily, rules *Rules) Tally {
	t.Helper()
	var tally Tally
	names := map[string]bool{}
	for name := range ours {
		if !strings.HasPrefix(name, "nodeagent_") {
			names[name] = true
		}
	}
	for name := range theirs {
		names[name] = true
	}
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range names {
			if !yield(n) {
				return
			}
		}
	}) {
		if d := rules.find("ignore-family", name); d != nil {
			d.used = true
			tally.IgnoredFamilies++
			continue
		}
		ourMF, theirMF := ours[name], theirs[name]
		ourSeries, ourIgnored := seriesOf(name, ourMF, rules)
		theirSeries, theirIgnored := seriesOf(name, theirMF, rules)
		tally.IgnoredSeries += ourIgnored + theirIgnored
		switch {
		case ourMF == nil && len(theirSeries) > 0:
			t.Errorf("%s: served by node_exporter, not by nodeagent", name)
			continue
		case theirMF == nil && len(ourSeries) > 0:
			t.Errorf("%s: served by nodeagent, not by node_exporter", name)
			continue
		case ourMF == nil || theirMF == nil:
			continue // on one side only, every series excused
		}
		tally.Families++
		if ourMF.GetType() != theirMF.GetType() {
			t.Errorf("%s: type %s, node_exporter %s", name, ourMF.GetType(), theirMF.GetType())
		}
		if ourMF.GetHelp() != theirMF.GetHelp() {
			if d := rules.find("ignore-help", name); d != nil {
				d.used = true
			} else {
				t.Errorf("%s: help %q, node_exporter %q", name, ourMF.GetHelp(), theirMF.GetHelp())
			}
		}
		if rules.Volatile != nil && rules.Volatile.MatchString(name) {
			for k := range ourSeries {
				ourSeries[k] = "(not compared)"
			}
			for k := range theirSeries {
				theirSeries[k] = "(not compared)"
			}
		}
		if diff := cmp.Diff(theirSeries, ourSeries); diff != "" {
			t.Errorf("%s: series differ (-node_exporter +nodeagent):\n%s", name, diff)
		}
		tally.Series += len(theirSeries)
	}
	for _, d := range rules.directives {
		if !d.used {
			t.Errorf("%s: this rule matched nothing; remove it or fix it", d.text)
		}
	}
	return tally
}

// Series renders each series of mf as `{labels}` → value, for comparisons
// with a peer's output.
func Series(mf *dto.MetricFamily) map[string]string {
	s, _ := seriesOf(mf.GetName(), mf, &Rules{})
	return s
}

// seriesOf renders each series of mf not ignored by the rules as
// `{labels}` → value, and counts the ignored ones.
func seriesOf(name string, mf *dto.MetricFamily, rules *Rules) (map[string]string, int) {
	out := map[string]string{}
	ignored := 0
	for _, m := range mf.GetMetric() {
		if rules.ignoredSeries(name, m) {
			ignored++
			continue
		}
		var labels []string
		for _, l := range m.GetLabel() {
			if rules.ignoredLabel(name, l.GetName()) {
				continue
			}
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
	return out, ignored
}

// NodeExporterConformance runs node_exporter over every node-layer golden
// case of the calling package with the same flags and requires the same
// families, types, help, label sets and values as the golden, except where
// the case's .conformance file declares a deliberate difference. Each case
// says what it compared and fails when it compared nothing, unless both
// sides serve nothing at all.
func NodeExporterConformance(t *testing.T) {
	bin := NodeExporterBin(t)
	ran := 0
	for _, c := range Cases(t) {
		reg, ok := collectors.Lookup(c.Collector)
		if !ok || reg.Layer != collectors.LayerNode || c.WantErr != "" {
			continue
		}
		ran++
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			rules := ReadRules(t, strings.TrimSuffix(c.Golden, ".prom")+".conformance")
			if rules.skip != "" {
				t.Skip("not comparable with node_exporter over a fixture: " + rules.skip)
			}
			theirs := RunNodeExporter(t, bin, c)
			ours := Parse(t, ReadFile(t, c.Golden))
			tally := CompareFamilies(t, ours, theirs, rules)
			switch {
			case tally.Series > 0 && rules.comparesNothing != "":
				t.Errorf("compared %d series, but the case says it compares nothing (%s): remove compares-nothing", tally.Series, rules.comparesNothing)
			case tally.Series > 0:
				t.Log(tally)
			case len(ours) == 0 && len(theirs) == 0:
				t.Log("both serve nothing, as the empty golden says")
			case rules.comparesNothing != "":
				t.Logf("%s; nothing left to compare, as the case says: %s", tally, rules.comparesNothing)
			default:
				t.Errorf("compared no series: %s", tally)
			}
		})
	}
	if ran == 0 {
		t.Fatal("no node-layer golden cases to compare")
	}
}

// HostComparison is how CompareOnHost compares a collector with
// node_exporter's on this machine.
type HostComparison struct {
	Args []string // flags for both, beyond the defaults
	// Volatile matches families whose values change between the two
	// scrapes (clocks, counters): they are compared by label sets only.
	// Every other family's values must be equal.
	Volatile *regexp.Regexp
}

// CompareOnHost runs our collector and node_exporter's of the same name on
// this machine, each with its default paths plus the given flags, and
// requires the same families, types, help and series, and equal values
// where they are not volatile. It is for collectors whose input
// node_exporter cannot be pointed at a fixture (netlink, system calls,
// fixed paths). When neither serves anything on this host, the test is
// skipped with the reason: there is nothing to compare.
func CompareOnHost(t *testing.T, collector string, hc HostComparison) {
	t.Helper()
	bin := NodeExporterBin(t)
	c := Case{Collector: collector, Dir: "/", Args: hc.Args}
	theirs := RunNodeExporter(t, bin, c)
	col, err := Build(t, collector, HostEnv(t), hc.Args...)
	if err != nil {
		t.Fatalf("building %s: %v", collector, err)
	}
	out, err := Exposition(t, col)
	if err != nil && !errors.Is(err, collectors.ErrNoData) {
		t.Fatalf("Update on this host: %v", err)
	}
	ours := Parse(t, out)
	if len(ours) == 0 && len(theirs) == 0 {
		t.Skipf("neither serves anything for %s on this host: nothing to compare here (the fixture cases compare it)", collector)
	}
	tally := CompareFamilies(t, ours, theirs, &Rules{Volatile: hc.Volatile})
	if tally.Series == 0 {
		t.Errorf("compared no series: %s", tally)
	}
	t.Log(tally)
}

var listeningRE = regexp.MustCompile(`msg="Listening on" address=(\S+)`)

// nodeExporterOwn are node_exporter's families about itself, not the host.
var nodeExporterOwn = regexp.MustCompile(`^(go_|process_|promhttp_|node_exporter_|node_scrape_collector_)`)

// RunNodeExporter starts node_exporter with only c's collector over c's
// fixture tree (Dir "/" is the host) and returns its host families.
func RunNodeExporter(t testing.TB, bin string, c Case) map[string]*dto.MetricFamily {
	t.Helper()
	args := []string{
		"--web.listen-address=127.0.0.1:0",
		"--collector.disable-defaults", "--collector." + c.Collector,
		"--path.procfs=" + filepath.Join(c.Dir, "proc"),
		"--path.sysfs=" + filepath.Join(c.Dir, "sys"),
		"--path.rootfs=" + filepath.Join(c.Dir, "root"),
		"--path.udev.data=" + filepath.Join(c.Dir, "udev"),
	}
	if c.Dir == "/" {
		args = args[:3] // the host: node_exporter's own defaults
	}
	return ScrapeNodeExporter(t, bin, append(args, c.Args...))
}

// ScrapeNodeExporter starts node_exporter with args (which must include
// --web.listen-address=127.0.0.1:0), scrapes it once and returns its host
// families.
func ScrapeNodeExporter(t testing.TB, bin string, args []string) map[string]*dto.MetricFamily {
	t.Helper()
	all := ScrapeNodeExporterAll(t, bin, args)
	for name := range all {
		if nodeExporterOwn.MatchString(name) {
			delete(all, name)
		}
	}
	return all
}

// ScrapeNodeExporterAll is ScrapeNodeExporter with node_exporter's
// families about itself kept (node_exporter_build_info, go_*, ...).
func ScrapeNodeExporterAll(t testing.TB, bin string, args []string) map[string]*dto.MetricFamily {
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
	return Parse(t, body)
}
