package exposition

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/client_golang/prometheus/promhttp/zstd" // promhttp offers zstd only with this
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// exampleFamilies has every metric type, labels that need escaping, and a
// name that is not a legacy Prometheus name (escaping schemes differ on it).
func exampleFamilies(t testing.TB) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "example_requests_total", Help: "Requests."}, []string{"path", "code"})
	c.WithLabelValues("/a\"b\\c\nd", "200").Add(3)
	c.WithLabelValues("/", "500").Inc()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "example.dotted_gauge", Help: "A UTF-8 name."})
	g.Set(-1.5)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "example_seconds", Help: "Durations.", Buckets: []float64{0.1, 1}})
	h.Observe(0.5)
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "example_bytes", Help: "Sizes.", Objectives: map[float64]float64{0.5: 0.05}})
	s.Observe(42)
	reg.MustRegister(c, g, h, s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// answer is what a scraper sees: the headers that negotiation decides and
// the decoded body.
type answer struct {
	Status                             int
	ContentType, ContentEncoding, Vary string
	Body                               string
}

func decodedAnswer(t *testing.T, rec *httptest.ResponseRecorder) answer {
	t.Helper()
	res := rec.Result()
	a := answer{
		Status:          res.StatusCode,
		ContentType:     res.Header.Get("Content-Type"),
		ContentEncoding: res.Header.Get("Content-Encoding"),
		Vary:            strings.Join(res.Header.Values("Vary"), ","),
	}
	var r io.Reader = res.Body
	switch a.ContentEncoding {
	case "gzip":
		r = strings.NewReader(oneGzipMember(t, rec.Body.Bytes()))
	case "zstd":
		zr, err := zstd.NewReader(res.Body)
		if err != nil {
			t.Fatalf("zstd answer: %v", err)
		}
		defer zr.Close()
		r = zr
	}
	body, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading %s answer: %v", a.ContentEncoding, err)
	}
	a.Body = string(body)
	return a
}

// promhttpAnswer is what promhttp, as nodeagent used it before this package
// (ContinueOnError), answers with zstd offered as well.
func promhttpAnswer(t *testing.T, req *http.Request, mfs []*dto.MetricFamily, gatherErr error) answer {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return mfs, gatherErr }), promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		OfferedCompressions: []promhttp.Compression{promhttp.Identity, promhttp.Gzip, promhttp.Zstd},
	}).ServeHTTP(rec, req)
	return decodedAnswer(t, rec)
}

func ourAnswer(t *testing.T, req *http.Request, mfs []*dto.MetricFamily, gatherErr error) (answer, []string) {
	t.Helper()
	rec := httptest.NewRecorder()
	var logged []string
	Write(rec, req, mfs, nil, gatherErr, func(msg string, err error) { logged = append(logged, msg+": "+err.Error()) })
	return decodedAnswer(t, rec), logged
}

func TestExpositionLikePromhttp(t *testing.T) {
	mfs := exampleFamilies(t)
	// Without the counter's created timestamps, which the container
	// layer's counters do not have, so that it can be given in compact
	// form too.
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if m.Counter != nil {
				m.Counter.CreatedTimestamp = nil
			}
		}
	}
	_, rest, compact := splitCompact(mfs)
	if len(compact) != 2 {
		t.Fatalf("%d compact families; want the counter and the gauge", len(compact))
	}
	cases := []struct{ accept, acceptEncoding, query string }{
		{"", "", ""},
		{"", "gzip", ""}, // what Prometheus sends
		{"", "zstd", ""},
		{"", "gzip, zstd", ""},
		{"", "zstd;q=1.0, gzip;q=0.5", ""},
		{"", "gzip;q=0", ""},
		{"", "*", ""},
		{"", "*;q=0", ""},
		{"", "br", ""},
		{"", "identity", ""},
		{"", "deflate, gzip;q=0.8, identity;q=0.9", ""},
		{"", "garbage;;, gzip", ""},
		// Prometheus 3's default Accept.
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1", "gzip", ""},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "zstd", ""},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;escaping=underscores", "", ""},
		{"text/plain;version=1.0.0;escaping=allow-utf-8", "", ""},
		{"text/plain;version=0.0.4;escaping=dots", "gzip", ""},
		{"text/plain;version=0.0.4;escaping=values", "", ""},
		{"text/plain;version=0.0.4;escaping=underscores", "", ""},
		{"application/openmetrics-text;version=1.0.0", "", ""}, // not offered: text
		{"application/json", "", ""},
		{"*/*", "gzip", ""},
		{"", "gzip", "name[]=example_seconds&name[]=example_bytes"},
	}
	for _, c := range cases {
		req := httptest.NewRequest(http.MethodGet, "/metrics?"+c.query, nil)
		if c.accept != "" {
			req.Header.Set("Accept", c.accept)
		}
		if c.acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", c.acceptEncoding)
		}
		want := promhttpAnswer(t, req, mfs, nil)
		got, logged := ourAnswer(t, req, mfs, nil)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Accept %q, Accept-Encoding %q, query %q: answer differs from promhttp's (-promhttp +nodeagent):\n%s", c.accept, c.acceptEncoding, c.query, diff)
		}
		// The same families with the counters and gauges in compact form.
		rec := httptest.NewRecorder()
		Write(rec, req, rest, compact, nil, func(msg string, err error) { logged = append(logged, msg+": "+err.Error()) })
		if diff := cmp.Diff(want, decodedAnswer(t, rec)); diff != "" {
			t.Errorf("Accept %q, Accept-Encoding %q, query %q, compact families: answer differs from promhttp's (-promhttp +nodeagent):\n%s", c.accept, c.acceptEncoding, c.query, diff)
		}
		if len(logged) > 0 {
			t.Errorf("Accept %q, Accept-Encoding %q: logged %q", c.accept, c.acceptEncoding, logged)
		}
		if want.Body == "" && c.query == "" {
			t.Errorf("Accept %q, Accept-Encoding %q: empty body", c.accept, c.acceptEncoding)
		}
	}
}

func TestExpositionGatherErrorsLikePromhttp(t *testing.T) {
	mfs := exampleFamilies(t)
	gatherErr := errors.New("collector x failed")
	for _, tc := range []struct {
		name string
		mfs  []*dto.MetricFamily
	}{
		{"nothing gathered", nil},
		{"some families gathered", mfs},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		want := promhttpAnswer(t, req, tc.mfs, gatherErr)
		got, logged := ourAnswer(t, req, tc.mfs, gatherErr)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: answer differs from promhttp's (-promhttp +nodeagent):\n%s", tc.name, diff)
		}
		if len(logged) != 1 || !strings.Contains(logged[0], "collector x failed") {
			t.Errorf("%s: logged %q, want the gather error once", tc.name, logged)
		}
	}
}

// FuzzNegotiateEncoding holds the negotiation of format and encoding to
// promhttp's for any Accept and Accept-Encoding headers.
func FuzzNegotiateEncoding(f *testing.F) {
	for _, s := range []struct{ accept, enc string }{
		{"", "gzip"}, {"", "gzip;q=0.5, zstd;q=0.50"}, {"*/*", "*;q=0.0001, identity;q=0"},
		{"text/plain;version=0.0.4;escaping=dots", "x-gzip, gzip ; q=1.000"},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,*/*;q=0.1", "zstd;q=0.9999999999999999999"},
	} {
		f.Add(s.accept, s.enc)
	}
	f.Fuzz(func(t *testing.T, accept, acceptEncoding string) {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header["Accept"] = []string{accept}
		req.Header["Accept-Encoding"] = []string{acceptEncoding}
		rec := httptest.NewRecorder()
		promhttp.HandlerFor(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return nil, nil }), promhttp.HandlerOpts{
			OfferedCompressions: []promhttp.Compression{promhttp.Identity, promhttp.Gzip, promhttp.Zstd},
		}).ServeHTTP(rec, req)
		wantEnc := rec.Header().Get("Content-Encoding")
		if wantEnc == "" {
			wantEnc = encIdentity
		}
		if got := negotiateEncoding(req.Header); got != wantEnc {
			t.Errorf("Accept-Encoding %q: negotiated %q, promhttp %q", acceptEncoding, got, wantEnc)
		}
		if got, want := string(expfmt.NegotiateAccept(req.Header, expfmt.DefaultAcceptedFormats()...)), rec.Header().Get("Content-Type"); got != want {
			t.Errorf("Accept %q: negotiated %q, promhttp %q", accept, got, want)
		}
	})
}

// BenchmarkCompression compresses a real kubelet's /metrics/cadvisor
// (1.4 MB of text, 1.35's capture) with each candidate: compress/gzip as
// promhttp uses it, klauspost/compress's gzip at several levels, and zstd.
// bytes/op is the output size, MB/s the input rate; the level in exposition.go
// was chosen from these.
func BenchmarkCompression(b *testing.B) {
	in, err := os.ReadFile("../fakekubelet/testdata/k8s-1.35_metrics-cadvisor.txt")
	if err != nil {
		b.Fatal(err)
	}
	type writer interface {
		io.WriteCloser
		Reset(io.Writer)
	}
	for _, bc := range []struct {
		name string
		new  func() writer
	}{
		{"stdlib-gzip/default", func() writer { return stdGzipWriter() }},
		{"stdlib-gzip/best-speed", func() writer { return stdGzipWriterLevel(1) }},
		{"klauspost-gzip/level=1", func() writer { return kpGzip(b, 1) }},
		{"klauspost-gzip/level=2", func() writer { return kpGzip(b, 2) }},
		{"klauspost-gzip/level=3", func() writer { return kpGzip(b, 3) }},
		{"klauspost-gzip/level=5", func() writer { return kpGzip(b, 5) }},
		{"klauspost-gzip/default", func() writer { return kpGzip(b, gzip.DefaultCompression) }},
		{"klauspost-gzip/huffman-only", func() writer { return kpGzip(b, gzip.HuffmanOnly) }},
		{"zstd/fastest", func() writer { return kpZstd(b, zstd.SpeedFastest) }},
		{"zstd/default", func() writer { return kpZstd(b, zstd.SpeedDefault) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := bc.new()
			var out bytes.Buffer
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				out.Reset()
				w.Reset(&out)
				if _, err := w.Write(in); err != nil {
					b.Fatal(err)
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(out.Len()), "out-bytes")
			b.ReportMetric(float64(out.Len())/float64(len(in)), "ratio")
		})
	}
}

func kpGzip(b *testing.B, level int) *gzip.Writer {
	w, err := gzip.NewWriterLevel(nil, level)
	if err != nil {
		b.Fatal(err)
	}
	return w
}

type zstdWriter struct{ *zstd.Encoder }

func (z zstdWriter) Reset(w io.Writer) { z.Encoder.Reset(w) }

func kpZstd(b *testing.B, level zstd.EncoderLevel) zstdWriter {
	w, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
	if err != nil {
		b.Fatal(err)
	}
	return zstdWriter{w}
}

func stdGzipWriter() *stdgzip.Writer { return stdgzip.NewWriter(nil) }

func stdGzipWriterLevel(level int) *stdgzip.Writer {
	w, _ := stdgzip.NewWriterLevel(nil, level) // level 1 is valid
	return w
}

// manyGauges has n distinct series (gaugeFamilies' labels repeat after 910).
func manyGauges(t testing.TB, n int) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "example_volume_bytes", Help: "Sizes."}, []string{"volume", "node"})
	for i := range n {
		g.WithLabelValues(fmt.Sprintf("pvc-%08x-%d", i*2654435761, i), "node-"+strconv.Itoa(i%3)).Set(float64(i%1000) * 1.5)
	}
	reg.MustRegister(g)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// gaugeFamilies is one gauge family of n series, for answers of a chosen
// size.
func gaugeFamilies(t testing.TB, n int) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "example_sized_bytes", Help: "Sizes."}, []string{"device", "mountpoint"})
	for i := range n {
		g.WithLabelValues("sd"+strings.Repeat("x", i%7), "/srv/volume-"+strings.Repeat("y", i%13)+string(rune('a'+i%26))+"/"+strings.Repeat("0", i%5)).Set(float64(i) * 1.5)
	}
	reg.MustRegister(g)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// oneGzipMember decodes raw with the standard library's reader, which is
// not the writer's library, and insists that it is one gzip member with
// nothing after it: curl and wget stop after the first member of several.
func oneGzipMember(t testing.TB, raw []byte) string {
	t.Helper()
	body, err := decodeOneMember(raw)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

func decodeOneMember(raw []byte) (string, error) {
	br := bytes.NewReader(raw) // a ByteReader: the decoder reads no further than the member
	zr, err := stdgzip.NewReader(br)
	if err != nil {
		return "", fmt.Errorf("gzip answer: %w", err)
	}
	zr.Multistream(false)
	body, err := io.ReadAll(zr)
	if err != nil {
		return "", fmt.Errorf("reading the gzip answer: %w", err)
	}
	if br.Len() != 0 {
		return "", fmt.Errorf("%d bytes after the first gzip member of %d", br.Len(), len(raw))
	}
	return string(body), nil
}

// TestGzipCompressorBySize: an answer that fits in the text buffer is
// compressed statelessly (nothing kept between scrapes), a larger one with
// the pooled BestSpeed compressor, under ParallelGzip too when it is too
// small for chunks or Go runs one thread (TestParallelGzip has the
// chunks); all decode to promhttp's text, as one gzip member. The
// compressor is told apart by its output: each level's is deterministic
// for the same input, and they differ.
func TestGzipCompressorBySize(t *testing.T) {
	compress := func(t *testing.T, level int, text []byte) []byte {
		t.Helper()
		var out bytes.Buffer
		w, err := gzip.NewWriterLevel(&out, level)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(text); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	for _, tc := range []struct {
		name     string
		series   int
		level    int
		parallel bool // Options.ParallelGzip
		procs    int  // GOMAXPROCS for the case, when not 0
	}{
		{"empty", 0, gzip.StatelessCompression, false, 0},
		{"small", 50, gzip.StatelessCompression, false, 0},
		{"just-under-buffer", -1, gzip.StatelessCompression, false, 0},
		{"large", 5000, gzipLevel, false, 2},
		{"larger", -2, gzipLevel, false, 2},
		{"small-parallel", 50, gzip.StatelessCompression, true, 2},
		{"large-parallel-one-thread", -3, gzipLevel, true, 1},
		{"large-parallel-under-chunks", 5000, gzipLevel, true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.procs != 0 {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tc.procs))
			}
			n := tc.series
			if n == -1 {
				// The most series whose text fits in bufSize.
				n = sort.Search(5000, func(i int) bool { return len(textOf(t, gaugeFamilies(t, i+1))) > bufSize })
			}
			mfs := gaugeFamilies(t, n)
			if n < -1 {
				// Enough text for -n chunks and some.
				mfs = manyGauges(t, -n*chunkText/60+100)
			}
			text := textOf(t, mfs)
			if tc.level == gzipLevel && len(text) <= bufSize {
				t.Fatalf("%d bytes of text fit in the buffer; the case needs more", len(text))
			}
			if tc.level == gzip.StatelessCompression && len(text) > bufSize {
				t.Fatalf("%d bytes of text do not fit in the buffer (%d)", len(text), bufSize)
			}
			if tc.parallel && tc.procs > 1 && answerSize(mfs, nil) >= parallelMin {
				t.Fatalf("%d bytes of text, estimated %d: chunks; the case needs less", len(text), answerSize(mfs, nil))
			}
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept-Encoding", "gzip")
			rec := httptest.NewRecorder()
			Options{ParallelGzip: tc.parallel}.Write(rec, req, mfs, nil, nil, func(msg string, err error) { t.Errorf("%s: %v", msg, err) })
			raw := rec.Body.Bytes()
			if got := decodedAnswer(t, rec); got.Body != string(text) {
				t.Fatalf("decoded answer differs from the text:\n%s", cmp.Diff(string(text), got.Body))
			}
			if want := compress(t, tc.level, text); !bytes.Equal(raw, want) {
				other := compress(t, gzipLevel+gzip.StatelessCompression-tc.level, text)
				t.Errorf("%d bytes of text compressed to %d bytes, not level %d's %d (the other compressor's: %d, equal but for the header: %t)",
					len(text), len(raw), tc.level, len(want), len(other), bytes.HasSuffix(other, raw[10:]))
			}
		})
	}
}

// textOf is the text exposition of mfs, as promhttp writes it.
func textOf(t testing.TB, mfs []*dto.MetricFamily) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}
