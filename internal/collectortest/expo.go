package collectortest

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/ from the current output")

// Updating says whether the test binary runs with -update: golden files
// are rewritten from the current output instead of compared.
func Updating() bool { return *update }

// Exposition runs c once and returns its output in the text format, with
// the error Update returned. The output goes through a pedantic registry,
// so an inconsistent collector fails the test.
//
// For a CompactCollector it calls UpdateCompact, as the Scraper does, and
// returns the text answer written from its families as they come, which
// is what is served: each family's series in the collector's order. They
// go through the pedantic registry too, for its consistency checks.
func Exposition(t testing.TB, c collectors.Collector) ([]byte, error) {
	t.Helper()
	if cc, ok := c.(collectors.CompactCollector); ok {
		return compactExposition(t, cc)
	}
	return updateExposition(t, c)
}

// MustExposition is Exposition for a scrape that must succeed: the test
// fails on an error.
func MustExposition(t testing.TB, c collectors.Collector) string {
	t.Helper()
	out, err := Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func compactExposition(t testing.TB, c collectors.CompactCollector) ([]byte, error) {
	t.Helper()
	compact, err := c.UpdateCompact(context.Background())
	updateExposition(t, updateFunc(func(ctx context.Context, ch chan<- prometheus.Metric) error {
		return collectors.SendCompact(ctx, ch, func(context.Context) ([]*exposition.CompactFamily, error) { return compact, nil })
	}))
	fams := slices.Clone(compact)
	slices.SortFunc(fams, func(a, b *exposition.CompactFamily) int { return strings.Compare(a.Name, b.Name) })
	rec := httptest.NewRecorder()
	exposition.Write(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil), nil, fams, nil,
		func(msg string, err error) { t.Errorf("%s: %v", msg, err) })
	return rec.Body.Bytes(), err
}

// updateFunc is a function as a collectors.Collector.
type updateFunc func(ctx context.Context, ch chan<- prometheus.Metric) error

func (f updateFunc) Update(ctx context.Context, ch chan<- prometheus.Metric) error { return f(ctx, ch) }

func updateExposition(t testing.TB, c collectors.Collector) ([]byte, error) {
	t.Helper()
	ch := make(chan prometheus.Metric)
	var ms collectors.MetricSlice
	done := make(chan struct{})
	go func() {
		for m := range ch {
			ms = append(ms, m)
		}
		close(done)
	}()
	err := c.Update(context.Background(), ch)
	close(ch)
	<-done
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(ms)
	mfs, gerr := reg.Gather()
	if gerr != nil {
		t.Fatalf("collector output is inconsistent: %v", gerr)
	}
	return Encode(t, mfs...), err
}

// Encode renders families in the text format.
func Encode(t testing.TB, mfs ...*dto.MetricFamily) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatalf("encoding %s: %v", mf.GetName(), err)
		}
	}
	return buf.Bytes()
}

// CompareGolden compares got with the golden file at path; with -update it
// rewrites the file instead.
func CompareGolden(t testing.TB, got []byte, path string) {
	t.Helper()
	if Updating() {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (go test -update writes it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("output differs from %s (-want +got):\n%s", path, diff)
	}
}

// CompareCollectorGolden runs c once and compares its exposition with the
// golden file at path.
func CompareCollectorGolden(t testing.TB, c collectors.Collector, path string) {
	t.Helper()
	got, err := Exposition(t, c)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	CompareGolden(t, got, path)
}

// Parse parses a text exposition into families by name.
func Parse(t testing.TB, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parsing exposition: %v", err)
	}
	return mfs
}

// ReadFile reads path or fails the test.
func ReadFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// SeriesLines returns the sample lines of c's exposition that start with
// prefix, sorted, with the error Update returned.
func SeriesLines(t testing.TB, c collectors.Collector, prefix string) ([]string, error) {
	t.Helper()
	out, err := Exposition(t, c)
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, prefix) {
			lines = append(lines, l)
		}
	}
	slices.Sort(lines)
	return lines, err
}
