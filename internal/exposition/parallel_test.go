package exposition

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/klauspost/compress/gzip"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// containerAnswer is an answer shaped like the container layer's: sets
// label sets (cgroups) shared by the series of families compact
// families, and beside them, merged by name, client_model families: the
// Scraper's own (a gauge), and a histogram, which the text writer leaves
// to expfmt.
func containerAnswer(sets, families int) (mfs []*dto.MetricFamily, compact []*CompactFamily) {
	labels := make([]*LabelSet, sets)
	names := []string{"container", "id", "image", "name", "namespace", "pod"}
	for i := range labels {
		id := fmt.Sprintf("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%08d_aaaa_bbbb_cccc_dddddddddddd.slice/cri-containerd-%064d.scope", i, i)
		labels[i] = NewLabelSet(names, []string{fmt.Sprintf("app-%d", i), id, "registry.example/team/app:1.2.3",
			fmt.Sprintf("%064d", i), "default", fmt.Sprintf("app-%d-7d9f8c6b5-x2x4z", i)})
	}
	for f := range families {
		cf := &CompactFamily{Name: fmt.Sprintf("container_part_%03d_total", f), Help: "A part.", Type: dto.MetricType_COUNTER}
		for i, l := range labels {
			cf.Labels = append(cf.Labels, l)
			cf.Values = append(cf.Values, float64(i*f)*1.5)
		}
		compact = append(compact, cf)
	}
	lp := func(n, v string) *dto.LabelPair { return &dto.LabelPair{Name: proto.String(n), Value: proto.String(v)} }
	mfs = []*dto.MetricFamily{
		{Name: proto.String("container_part_050_seconds"), Help: proto.String("A histogram."), Type: dto.MetricType_HISTOGRAM.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{lp("le_set", "a")}, Histogram: &dto.Histogram{
				SampleCount: proto.Uint64(3), SampleSum: proto.Float64(1.5),
				Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(2)}},
			}}}},
		{Name: proto.String("nodeagent_scrape_collector_success"), Help: proto.String("Success."), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Label: []*dto.LabelPair{lp("collector", "cadvisor")}, Gauge: &dto.Gauge{Value: proto.Float64(1)}}}},
	}
	return mfs, compact
}

// answerText is the text expfmt writes for mfs and compact merged by name.
func answerText(t testing.TB, mfs []*dto.MetricFamily, compact []*CompactFamily) []byte {
	t.Helper()
	all := slices.Clone(mfs)
	for _, c := range compact {
		all = append(all, c.MetricFamily())
	}
	slices.SortFunc(all, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return textOf(t, all)
}

// answerSize is the text the parallel writer estimates for an answer.
func answerSize(mfs []*dto.MetricFamily, compact []*CompactFamily) int {
	n := 0
	for f := range inOrder(mfs, compact) {
		n += f.textSize()
	}
	return n
}

// TestParallelGzip: an answer written in chunks on several goroutines
// decodes to expfmt's text, as one gzip member, with the zero time in its
// header, a little larger than one stream's output; answers too small
// for chunks, on one thread, or under a name[] filter that leaves little
// are one stream, byte for byte BestSpeed's.
func TestParallelGzip(t *testing.T) {
	one := func(t *testing.T, text []byte) []byte {
		t.Helper()
		var out bytes.Buffer
		w, err := gzip.NewWriterLevel(&out, gzipLevel)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(text)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return out.Bytes()
	}
	for _, tc := range []struct {
		name              string
		sets, families    int
		procs             int
		query             string
		chunked           bool
		wantChunksAtLeast int
	}{
		{"under-the-minimum", 100, 20, 2, "", false, 0},
		{"two-chunks", 400, 24, 2, "", true, 2},
		{"many-chunks", 400, 60, 2, "", true, 6},
		{"more-threads-than-chunks", 400, 24, 8, "", true, 2},
		{"one-thread", 400, 24, 1, "", false, 0},
		{"filtered-small", 400, 60, 2, "?name[]=container_part_001_total&name[]=nodeagent_scrape_collector_success", false, 0},
		{"filtered-large", 400, 60, 2, "?" + partNames(0, 40) + "&name[]=container_part_050_seconds", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(tc.procs))
			mfs, compact := containerAnswer(tc.sets, tc.families)
			req := httptest.NewRequest(http.MethodGet, "/metrics"+tc.query, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			// The text wanted, and the families the filter keeps.
			keepMfs, keepCompact := mfs, compact
			if names := req.URL.Query()["name[]"]; len(names) > 0 {
				keepMfs = slices.DeleteFunc(slices.Clone(mfs), func(mf *dto.MetricFamily) bool { return !slices.Contains(names, mf.GetName()) })
				keepCompact = slices.DeleteFunc(slices.Clone(compact), func(f *CompactFamily) bool { return !slices.Contains(names, f.Name) })
			}
			text := answerText(t, keepMfs, keepCompact)
			if size := answerSize(keepMfs, keepCompact); (size >= parallelMin) != (tc.chunked || tc.procs == 1) && tc.procs > 1 {
				t.Fatalf("estimated %d bytes of text (%d written) against %d for chunks: the case needs another size", size, len(text), parallelMin)
			}
			if got := len(cutChunks(slices.Collect(inOrder(keepMfs, keepCompact)))); got < tc.wantChunksAtLeast {
				t.Fatalf("%d chunks, the case wants at least %d", got, tc.wantChunksAtLeast)
			}
			rec := httptest.NewRecorder()
			Options{ParallelGzip: true}.Write(rec, req, mfs, compact, nil, func(msg string, err error) { t.Errorf("%s: %v", msg, err) })
			if got := rec.Header().Get("Content-Encoding"); got != "gzip" {
				t.Fatalf("Content-Encoding %q", got)
			}
			raw := rec.Body.Bytes()
			if got := oneGzipMember(t, raw); got != string(text) {
				t.Fatalf("decoded answer differs from expfmt's text:\n%s", cmp.Diff(string(text), got))
			}
			want := one(t, text)
			if !tc.chunked {
				if !bytes.Equal(raw, want) {
					t.Errorf("%d bytes of text compressed to %d bytes, not one BestSpeed stream's %d", len(text), len(raw), len(want))
				}
				return
			}
			if w := slices.Concat(want[:4], []byte{0, 0, 0, 0}, want[8:10]); !bytes.Equal(raw[:10], w) {
				t.Errorf("gzip header % x, want % x", raw[:10], w)
			}
			// Each chunk starts without the text before it, which costs
			// a little output.
			if bytes.Equal(raw[10:], want[10:]) || len(raw) < len(want) || len(raw) > len(want)*101/100 {
				t.Errorf("%d bytes of text in chunks compressed to %d bytes, want a little more than one stream's %d", len(text), len(raw), len(want))
			}
		})
	}
}

// partNames is the name[] query for container_part_<from> to <to>.
func partNames(from, to int) string {
	var q []string
	for i := from; i < to; i++ {
		q = append(q, fmt.Sprintf("name[]=container_part_%03d_total", i))
	}
	return strings.Join(q, "&")
}

// TestCutChunks: chunks hold the families in order, each whole, about
// chunkText of text each; the last one, alone, ends the stream.
func TestCutChunks(t *testing.T) {
	mfs, compact := containerAnswer(1000, 60)
	fams := slices.Collect(inOrder(mfs, compact))
	for _, tc := range []struct {
		name string
		fams []answerFamily
	}{{"none", nil}, {"one", fams[:1]}, {"all", fams}} {
		t.Run(tc.name, func(t *testing.T) {
			chunks := cutChunks(tc.fams)
			var got []answerFamily
			for i, c := range chunks {
				got = append(got, c.fams...)
				if c.final != (i == len(chunks)-1) {
					t.Errorf("chunk %d of %d: final %t", i, len(chunks), c.final)
				}
				size := 0
				for _, f := range c.fams {
					size += f.textSize()
				}
				if i < len(chunks)-1 && (size < chunkText || size-c.fams[len(c.fams)-1].textSize() >= chunkText) {
					t.Errorf("chunk %d: %d bytes of text estimated; a chunk is cut at the family that takes it to %d", i, size, chunkText)
				}
			}
			if len(got) != len(tc.fams) {
				t.Fatalf("%d families in the chunks, %d given", len(got), len(tc.fams))
			}
			for i := range got {
				if got[i] != tc.fams[i] {
					t.Fatalf("family %d in the chunks is %s, want %s", i, got[i].name(), tc.fams[i].name())
				}
			}
			if len(chunks) == 0 {
				t.Fatal("no chunk: an empty answer still needs the final block")
			}
		})
	}
}

var errGone = errors.New("connection reset by peer")

// failingWriter takes left bytes, then fails: a scraper that went away.
type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errGone
	}
	w.left -= len(p)
	return len(p), nil
}

// TestParallelGzipWriteError: a connection that fails at any point of the
// answer gives its error, and the goroutines writing chunks all return.
func TestParallelGzipWriteError(t *testing.T) {
	mfs, compact := containerAnswer(1000, 40)
	fams := slices.Collect(inOrder(mfs, compact))
	if n := len(cutChunks(fams)); n < 10 {
		t.Fatalf("%d chunks: the test needs more than the window of 6", n)
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	var full bytes.Buffer
	if errs, err := writeParallelGzip(&full, cutChunks(fams), format, 2, nil); err != nil || len(errs) != 0 {
		t.Fatal(err, errs)
	}
	before := runtime.NumGoroutine()
	for _, left := range []int{0, 5, 10, 11, full.Len() / 3, full.Len() / 2, full.Len() - 8, full.Len() - 1} {
		const workers = 3
		chunks := cutChunks(fams)
		_, err := writeParallelGzip(&failingWriter{left: left}, chunks, format, workers, nil)
		if !errors.Is(err, errGone) {
			t.Errorf("writing %d bytes of answer into a connection that takes %d: %v, want %v", full.Len(), left, err, errGone)
		}
		// A connection gone at the header: no more than the chunks
		// taken before it failed (one window) are written.
		written := 0
		for _, c := range chunks {
			if c.size > 0 {
				written++
			}
		}
		if left < 10 && written > 2*workers {
			t.Errorf("a connection that takes %d bytes: %d of %d chunks written, want at most %d", left, written, len(chunks), 2*workers)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // a goroutine ends just after Done
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the failed answers, %d before", n, before)
	}
}

// TestParallelGzipConcurrentAnswers: answers written at once share the
// compact families' label sets, whose text the chunks of each keep
// concurrently (run with -race), and each decodes whole.
func TestParallelGzipConcurrentAnswers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	mfs, compact := containerAnswer(400, 24)
	text := answerText(t, mfs, compact)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3 {
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				req.Header.Set("Accept-Encoding", "gzip")
				rec := httptest.NewRecorder()
				Options{ParallelGzip: true}.Write(rec, req, mfs, compact, nil, func(msg string, err error) { t.Errorf("%s: %v", msg, err) })
				if got, err := decodeOneMember(rec.Body.Bytes()); err != nil || got != string(text) {
					t.Errorf("answer %d of writer %d: decoded %d bytes (%v), want the %d written", i, g, len(got), err, len(text))
				}
			}
		})
	}
	wg.Wait()
}

// slowWriter stalls at its second write (the first chunk's output, after
// the header), as a scraper reading slowly does, and counts the chunks
// written by then.
type slowWriter struct {
	chunks []*gzipChunk
	writes int
	done   int // chunks done when the second write returned
	out    bytes.Buffer
}

func (w *slowWriter) Write(p []byte) (int, error) {
	if w.writes++; w.writes == 2 {
		time.Sleep(300 * time.Millisecond) // time enough to write them all
		for _, c := range w.chunks {
			select {
			case <-c.done:
				w.done++
			default:
			}
		}
	}
	return w.out.Write(p)
}

// TestParallelGzipBoundedAhead: behind a scraper that reads slowly, the
// goroutines write at most two chunks each ahead of the one being sent,
// so the answer's output is not held whole.
func TestParallelGzipBoundedAhead(t *testing.T) {
	mfs, compact := containerAnswer(1000, 50)
	fams := slices.Collect(inOrder(mfs, compact))
	for _, workers := range []int{2, 3} {
		chunks := cutChunks(fams)
		if len(chunks) < 4*workers {
			t.Fatalf("%d chunks: the test needs more than the window of %d", len(chunks), 2*workers)
		}
		w := &slowWriter{chunks: chunks}
		if errs, err := writeParallelGzip(w, chunks, expfmt.NewFormat(expfmt.TypeTextPlain), workers, nil); err != nil || len(errs) != 0 {
			t.Fatal(err, errs)
		}
		// The chunk being sent holds its slot until it is sent.
		if w.done > 2*workers || w.done < 2 {
			t.Errorf("%d workers: %d of %d chunks written while the first was being sent, want 2 to %d", workers, w.done, len(chunks), 2*workers)
		}
		if got := oneGzipMember(t, w.out.Bytes()); got != string(answerText(t, mfs, compact)) {
			t.Errorf("%d workers: the answer does not decode to its text", workers)
		}
	}
}

// TestTextSize: a family's estimated text is close to what is written,
// also when its first series is the root cgroup's, whose labels are far
// shorter than the containers' (as the container layer's families are).
func TestTextSize(t *testing.T) {
	_, compact := containerAnswer(300, 1)
	f := compact[0]
	root := NewLabelSet([]string{"container", "id", "image", "name", "namespace", "pod"}, []string{"", "/"})
	f.Labels = append([]*LabelSet{root}, f.Labels...)
	f.Values = append([]float64{1}, f.Values...)
	written := len(answerText(t, nil, compact))
	got := answerFamily{compact: f}.textSize()
	if got < written*8/10 || got > written*12/10 {
		t.Errorf("estimated %d bytes of text, %d written: want within 20 %%", got, written)
	}
}
