package exposition

import (
	"bufio"
	"bytes"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// parsedFamilies are the families of a text exposition file.
func parsedFamilies(t *testing.T, path string) []*dto.MetricFamily {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parsing %s: %v", path, err)
	}
	var mfs []*dto.MetricFamily
	for _, mf := range byName {
		mfs = append(mfs, mf)
	}
	return mfs
}

// sharedFamilies have what parsed files do not: label slices shared by
// series of several families (as the container layer shares a cgroup's),
// the special values, escapes in help and label values, and the names the
// text writer must leave to expfmt.
func sharedFamilies() []*dto.MetricFamily {
	lp := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)} }
	a := []*dto.LabelPair{lp("container", "app"), lp("id", `/kubepods.slice/a\b"c`+"\n"), lp("namespace", "")}
	b := []*dto.LabelPair{lp("container", ""), lp("id", "/")}
	colon := []*dto.LabelPair{lp("a:b", "x")}
	dotted := []*dto.LabelPair{lp("a.b", "x")}
	nameLabel := []*dto.LabelPair{lp("__name__", "x.y")}
	gauge := func(v float64, l []*dto.LabelPair) *dto.Metric {
		return &dto.Metric{Label: l, Gauge: &dto.Gauge{Value: proto.Float64(v)}}
	}
	counter := func(v float64, l []*dto.LabelPair) *dto.Metric {
		return &dto.Metric{Label: l, Counter: &dto.Counter{Value: proto.Float64(v)}}
	}
	fam := func(name, help string, typ dto.MetricType, ms ...*dto.Metric) *dto.MetricFamily {
		mf := &dto.MetricFamily{Name: proto.String(name), Type: typ.Enum(), Metric: ms}
		if help != "-" {
			mf.Help = proto.String(help)
		}
		return mf
	}
	return []*dto.MetricFamily{
		fam("container_a_total", `help with \ and`+"\nnewline", dto.MetricType_COUNTER, counter(1, a), counter(0, b), counter(12345678901234, nil)),
		fam("container_b", "-", dto.MetricType_GAUGE, gauge(math.Inf(1), a), gauge(math.Inf(-1), b), gauge(math.NaN(), a), gauge(-1, b), gauge(math.Copysign(0, -1), a), gauge(1e-7, b), gauge(0.1, nil)),
		fam("container_c:ratio", "colons are legacy names", dto.MetricType_GAUGE, gauge(2.5, colon), gauge(3, a)),
		fam("container.d", "not a legacy name: expfmt's", dto.MetricType_GAUGE, gauge(1, a)),
		fam("container_e", "a label that is not a legacy name: expfmt's", dto.MetricType_GAUGE, gauge(1, dotted)),
		fam("container_f", "__name__ as a label: expfmt's", dto.MetricType_GAUGE, gauge(1, nameLabel)),
		fam("container_g", "a timestamp: expfmt's", dto.MetricType_GAUGE, &dto.Metric{Label: a, Gauge: &dto.Gauge{Value: proto.Float64(1)}, TimestampMs: proto.Int64(1700000000000)}),
		fam("container_h", "untyped", dto.MetricType_UNTYPED, &dto.Metric{Label: b, Untyped: &dto.Untyped{Value: proto.Float64(4)}}, &dto.Metric{Label: a, Untyped: &dto.Untyped{Value: proto.Float64(-2.5)}}),
		fam("container_h2", "an untyped without its value: expfmt's error", dto.MetricType_UNTYPED, &dto.Metric{Label: b}),
		fam("container_i_total", "empty: expfmt's error", dto.MetricType_COUNTER),
		fam("container_j", "a gauge without its value: expfmt's error", dto.MetricType_GAUGE, &dto.Metric{Label: b}),
		fam("container_k", "shared again after expfmt's", dto.MetricType_GAUGE, gauge(7, a), gauge(8, b)),
	}
}

// TestTextWriterLikeExpfmt: the answer in each text format and escaping
// scheme is byte for byte expfmt's, over the end-to-end goldens, a real
// kubelet's /metrics/cadvisor and families built to reach every branch;
// and so it is when the counters and gauges among them are given in
// compact form, merged by name with the rest.
func TestTextWriterLikeExpfmt(t *testing.T) {
	sets := map[string][]*dto.MetricFamily{
		"e2e golden":              parsedFamilies(t, "../../cmd/nodeagent/testdata/e2e/metrics.prom"),
		"kubelet 1.35 capture":    parsedFamilies(t, "../fakekubelet/testdata/k8s-1.35_metrics-cadvisor.txt"),
		"shared label slices etc": sharedFamilies(),
	}
	for name, set := range sets {
		mfs, rest, compact := splitCompact(set)
		if len(compact) == 0 || name == "shared label slices etc" && len(rest) == 0 {
			t.Fatalf("%s: %d compact and %d other families", name, len(compact), len(rest))
		}
		for _, accept := range []string{
			"",
			"text/plain;version=0.0.4",
			"text/plain;version=0.0.4;escaping=dots",
			"text/plain;version=0.0.4;escaping=values",
			"text/plain;version=1.0.0;escaping=allow-utf-8",
			"text/plain;version=1.0.0;escaping=underscores",
		} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			format := expfmt.NegotiateAccept(req.Header, expfmt.DefaultAcceptedFormats()...)
			var want bytes.Buffer
			enc := expfmt.NewEncoder(&want, format)
			var wantErrs int
			for _, mf := range mfs {
				if enc.Encode(mf) != nil {
					wantErrs++
				}
			}
			for form, answer := range map[string]func(http.ResponseWriter, func(string, error)){
				"client_model": func(w http.ResponseWriter, logf func(string, error)) { Write(w, req, mfs, nil, nil, logf) },
				"compact":      func(w http.ResponseWriter, logf func(string, error)) { Write(w, req, rest, compact, nil, logf) },
			} {
				rec := httptest.NewRecorder()
				var gotErrs int
				answer(rec, func(string, error) { gotErrs++ })
				if diff := cmp.Diff(want.String(), rec.Body.String()); diff != "" {
					t.Errorf("%s, Accept %q, %s families: differs from expfmt (-expfmt +nodeagent):\n%s", name, accept, form, diff)
				}
				if gotErrs != wantErrs {
					t.Errorf("%s, Accept %q, %s families: %d encoding errors logged, expfmt had %d", name, accept, form, gotErrs, wantErrs)
				}
			}
			if want.Len() == 0 {
				t.Errorf("%s, Accept %q: nothing written", name, accept)
			}
		}
	}
	// The text writer took the shared families, not expfmt.
	tw := getTextWriter()
	defer tw.release()
	var b bytes.Buffer
	w := bufioWriter(&b)
	if done, err := tw.writeFamily(w, sharedFamilies()[0]); !done || err != nil {
		t.Errorf("container_a_total: written %v, %v; want the text writer to write it", done, err)
	}
	if !strings.Contains(string(mustFlush(t, w, &b)), `container_a_total{container="app",id="/kubepods.slice/a\\b\"c\n",namespace=""} 1`) {
		t.Errorf("container_a_total not as expected:\n%s", b.String())
	}
}

func bufioWriter(b *bytes.Buffer) *bufio.Writer { return bufio.NewWriter(b) }

func mustFlush(t *testing.T, w *bufio.Writer, b *bytes.Buffer) []byte {
	t.Helper()
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzTextWriterLikeExpfmt holds the text writer to expfmt's bytes for
// any name, help, label and value, in two families sharing a label slice,
// given as client_model families and in compact form.
func FuzzTextWriterLikeExpfmt(f *testing.F) {
	f.Add("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "container", "app", 1.5, false)
	f.Add("x", "a\\b\nc", "id", "/a\"b\\c\nd", math.Inf(-1), true)
	f.Add("a:b", "", "a.b", "", math.NaN(), false)
	f.Fuzz(func(t *testing.T, name, help, labelName, labelValue string, v float64, counter bool) {
		lp := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)} }
		labels := []*dto.LabelPair{lp(labelName, labelValue), lp("zz", labelValue)}
		typ := dto.MetricType_GAUGE
		m := func(v float64) *dto.Metric {
			return &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: proto.Float64(v)}}
		}
		if counter {
			typ = dto.MetricType_COUNTER
			m = func(v float64) *dto.Metric {
				return &dto.Metric{Label: labels, Counter: &dto.Counter{Value: proto.Float64(v)}}
			}
		}
		mfs := []*dto.MetricFamily{
			{Name: proto.String(name), Help: proto.String(help), Type: typ.Enum(), Metric: []*dto.Metric{m(v)}},
			{Name: proto.String(name + "_2"), Help: proto.String(help), Type: typ.Enum(), Metric: []*dto.Metric{m(-v), {Gauge: &dto.Gauge{Value: proto.Float64(v)}, Counter: &dto.Counter{Value: proto.Float64(v)}}}},
		}
		for _, accept := range []string{"", "text/plain;version=1.0.0;escaping=allow-utf-8", "text/plain;version=0.0.4;escaping=dots"} {
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			var want bytes.Buffer
			enc := expfmt.NewEncoder(&want, expfmt.NegotiateAccept(req.Header, expfmt.DefaultAcceptedFormats()...))
			for _, mf := range mfs {
				_ = enc.Encode(mf) // an error leaves what expfmt wrote before it
			}
			_, rest, compact := splitCompact(mfs)
			for form, answer := range map[string]func(http.ResponseWriter){
				"client_model": func(w http.ResponseWriter) { Write(w, req, mfs, nil, nil, func(string, error) {}) },
				"compact":      func(w http.ResponseWriter) { Write(w, req, rest, compact, nil, func(string, error) {}) },
			} {
				rec := httptest.NewRecorder()
				answer(rec)
				if want.String() != rec.Body.String() {
					t.Errorf("Accept %q, %s families: differs from expfmt\nexpfmt:\n%s\nnodeagent:\n%s", accept, form, want.String(), rec.Body.String())
				}
			}
		}
	})
}

// BenchmarkWriteCompact writes an uncompressed answer shaped like the
// container layer's: label sets of six long values, each shared by every
// family (one series per label set and family), as collectors/cadvisor
// builds them; µs/series is the time per answer over its series.
func BenchmarkWriteCompact(b *testing.B) {
	// 1,500 cgroups' label sets shared by 40 families, as the container
	// layer has them (containerAnswer, without its other families).
	const sets, families = 1500, 40
	_, compact := containerAnswer(sets, families)
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	rec := &discardResponse{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		Write(rec, req, nil, compact, nil, func(msg string, err error) { b.Fatalf("%s: %v", msg, err) })
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(sets*families), "µs/series")
}

// discardResponse is an http.ResponseWriter that drops the body.
type discardResponse struct{ header http.Header }

func (w *discardResponse) Header() http.Header         { return w.header }
func (w *discardResponse) WriteHeader(int)             {}
func (w *discardResponse) Write(p []byte) (int, error) { return len(p), nil }

func TestNeedsEscape(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
	}{
		{"", false},
		{"/kubepods.slice/kubepods-pod1.slice/cri-containerd-0a1b.scope", false},
		{"it's {a=b}, \t tab", false},
		{`"quoted`, true},
		{`back\slash`, true},
		{"new\nline", true},
		{"ends with a newline\n", true},
	} {
		if got := needsEscape(tc.value); got != tc.want {
			t.Errorf("needsEscape(%q) = %v, want %v", tc.value, got, tc.want)
		}
	}
}

// TestWriteFloatAsExpfmt: every value is written as strconv's 'g' with the
// shortest precision writes it (expfmt's form), around the integer fast
// path's bounds and off them.
func TestWriteFloatAsExpfmt(t *testing.T) {
	values := []float64{0, 1, -1, 2, -2, 10, 999999, -999999, 1e6, -1e6, 1e6 + 1, 123456, 999999.5, 0.5, -0.5,
		1e-5, 1.5e300, math.MaxInt64, math.MinInt64, 1 << 53, math.Nextafter(1e6, 0), math.Nextafter(-1e6, 0),
		math.Copysign(0, -1)}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		values = append(values, float64(r.IntN(4_000_000)-2_000_000), r.Float64()*2e6-1e6, math.Ldexp(r.Float64(), r.IntN(200)-100))
	}
	var tw textWriter
	var out bytes.Buffer
	for _, v := range values {
		out.Reset()
		w := bufio.NewWriter(&out)
		tw.writeFloat(w, v)
		_ = w.Flush()
		want := strconv.FormatFloat(v, 'g', -1, 64)
		switch v {
		case 0:
			want = "0" // expfmt writes -0 as 0 too
		}
		if out.String() != want {
			t.Errorf("writeFloat(%v) = %q, want %q", v, out.String(), want)
		}
	}
}
