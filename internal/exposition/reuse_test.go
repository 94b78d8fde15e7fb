package exposition

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// withFamily returns compact with its i-th family replaced by a copy that
// change modifies: families are not modified once answered.
func withFamily(compact []*CompactFamily, i int, change func(f *CompactFamily)) []*CompactFamily {
	out := slices.Clone(compact)
	f := *compact[i]
	f.Labels, f.Values = slices.Clone(f.Labels), slices.Clone(f.Values)
	change(&f)
	out[i] = &f
	return out
}

// reuseAnswer writes one gzip answer with reuse and returns its body.
func reuseAnswer(t *testing.T, o Options, mfs []*dto.MetricFamily, compact []*CompactFamily) []byte {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	o.Write(rec, req, mfs, compact, nil, func(msg string, err error) { t.Errorf("%s: %v", msg, err) })
	return rec.Body.Bytes()
}

// TestReuse: a family whose series hold still is written twice (the
// second time kept) and spliced from the third answer on; the answers decode to the
// text of their own families whatever changes between them: a value, a
// label set, the help, a series more, a family gone.
func TestReuse(t *testing.T) {
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprint(procs, "-threads"), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			mfs, base := containerAnswer(400, 24)
			nan := withFamily(base, 5, func(f *CompactFamily) { f.Values[3] = math.NaN() })
			other := NewLabelSet([]string{"container", "id"}, []string{"other", "/other"})
			steps := []struct {
				name    string
				compact []*CompactFamily
				spliced int // families spliced in the answer
			}{
				{"first", base, 0},
				{"same, kept", base, 0},
				{"same, spliced", base, 24},
				{"a value changed", withFamily(base, 3, func(f *CompactFamily) { f.Values[7]++ }), 23},
				{"back: written, then kept", base, 23},
				{"back, kept", base, 23},
				{"another label set, the other back spliced", withFamily(base, 10, func(f *CompactFamily) { f.Labels[0] = other }), 23},
				{"another help", withFamily(base, 11, func(f *CompactFamily) { f.Help = "Another help." }), 22},
				{"a series more", withFamily(base, 12, func(f *CompactFamily) {
					f.Labels, f.Values = append(f.Labels, other), append(f.Values, 1)
				}), 21},
				{"a family gone", slices.Delete(slices.Clone(base), 0, 1), 21},
				{"a NaN, the gone family back and spliced", nan, 22},
				{"the NaN again, kept", nan, 23},
				{"the NaN again, spliced", nan, 24},
			}
			o := Options{ParallelGzip: true, Reuse: NewReuse()}
			var sizes [2]int // with and without reuse, the last answer's
			for _, st := range steps {
				before, _ := o.Reuse.Counts()
				raw := reuseAnswer(t, o, mfs, st.compact)
				if got, want := oneGzipMember(t, raw), string(answerText(t, mfs, st.compact)); got != want {
					t.Fatalf("%s: decoded answer differs from its families' text:\n%s", st.name, cmp.Diff(want, got))
				}
				after, _ := o.Reuse.Counts()
				if int(after-before) != st.spliced {
					t.Errorf("%s: %d families spliced, want %d", st.name, after-before, st.spliced)
				}
				sizes[0] = len(raw)
			}
			// The pieces cost little output (each starts without the text
			// before it and flushes its compressor): against the answer
			// without reuse, in chunks as they are written.
			sizes[1] = len(reuseAnswer(t, Options{ParallelGzip: true}, mfs, steps[len(steps)-1].compact))
			if sizes[0] < sizes[1] || sizes[0] > sizes[1]*103/100 {
				t.Errorf("%d bytes with reuse, %d without: want a little more", sizes[0], sizes[1])
			}
		})
	}
}

// TestReuseConcurrentAnswers: answers written at once, of two versions of
// the same families, share one Reuse (run with -race); each decodes to
// its own version's text, never with a piece of the other's.
func TestReuseConcurrentAnswers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	mfs, a := containerAnswer(400, 24)
	b := a
	for _, i := range []int{0, 7, 23} {
		b = withFamily(b, i, func(f *CompactFamily) { f.Values[i] += 0.5 })
	}
	texts := [2]string{string(answerText(t, mfs, a)), string(answerText(t, mfs, b))}
	o := Options{ParallelGzip: true, Reuse: NewReuse()}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 6 {
				v := (g / 2) ^ (i / 3 % 2) // versions alternate between and within goroutines
				compact := [2][]*CompactFamily{a, b}[v]
				req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
				req.Header.Set("Accept-Encoding", "gzip")
				rec := httptest.NewRecorder()
				o.Write(rec, req, mfs, compact, nil, func(msg string, err error) { t.Errorf("%s: %v", msg, err) })
				if got, err := decodeOneMember(rec.Body.Bytes()); err != nil || got != texts[v] {
					t.Errorf("answer %d of writer %d, version %d: decoded %d bytes (%v), not its text (%d bytes)", i, g, v, len(got), err, len(texts[v]))
				}
			}
		})
	}
	wg.Wait()
	if spliced, _ := o.Reuse.Counts(); spliced == 0 {
		t.Error("no family spliced: the test does not test reuse")
	}
}

// TestReuseSmallAnswer: an answer under parallelMin is one stream, as
// without reuse.
func TestReuseSmallAnswer(t *testing.T) {
	mfs, compact := containerAnswer(20, 5)
	o := Options{Reuse: NewReuse()}
	for range 3 {
		if got, want := reuseAnswer(t, o, mfs, compact), reuseAnswer(t, Options{}, mfs, compact); !bytes.Equal(got, want) {
			t.Fatalf("%d bytes with reuse, %d without: a small answer should be the same stream", len(got), len(want))
		}
	}
	if spliced, written := o.Reuse.Counts(); spliced != 0 || written != 0 {
		t.Errorf("%d families spliced, %d written with reuse: want none", spliced, written)
	}
}

// TestReuseEscaping: a family whose name the text writer leaves to
// expfmt is written in the escaping scheme of each answer's format, never
// spliced from an answer in another scheme (the handler negotiates only
// underscores today; writeParallelGzip takes any); legacy names are the
// same text in both and spliced across them.
func TestReuseEscaping(t *testing.T) {
	mfs, compact := containerAnswer(400, 24)
	dotted := *compact[0]
	dotted.Name = "container.dotted_total"
	compact = append([]*CompactFamily{&dotted}, compact[1:]...)
	slices.SortFunc(compact, func(a, b *CompactFamily) int { return strings.Compare(a.Name, b.Name) })
	fams := slices.Collect(inOrder(mfs, compact))
	formats := []expfmt.Format{
		"text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
		"text/plain; version=0.0.4; charset=utf-8; escaping=dots",
	}
	answer := func(reuse *Reuse, format expfmt.Format) string {
		var out bytes.Buffer
		if errs, err := writeParallelGzip(&out, cutChunks(fams), format, 1, reuse); err != nil || len(errs) != 0 {
			t.Fatal(err, errs)
		}
		return oneGzipMember(t, out.Bytes())
	}
	var want [2]string
	for i, f := range formats {
		want[i] = answer(nil, f)
	}
	if want[0] == want[1] {
		t.Fatal("both schemes give the same text: the test needs a name they write differently")
	}
	reuse := NewReuse()
	for round := range 4 {
		for i, f := range formats {
			if got := answer(reuse, f); got != want[i] {
				t.Fatalf("round %d, %s: the answer differs from the one without reuse:\n%s", round, f, cmp.Diff(want[i], got))
			}
		}
	}
	if spliced, _ := reuse.Counts(); spliced == 0 {
		t.Error("nothing spliced: the legacy names should be")
	}
}

// TestReuseBudget: the pieces kept stay within the budget, the families
// beyond it are written every time, and a family that changes gives its
// piece's bytes back.
func TestReuseBudget(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	mfs, base := containerAnswer(400, 24)
	all := NewReuse()
	for range 3 {
		reuseAnswer(t, Options{Reuse: all}, mfs, base)
	}
	whole := all.kept.Load()
	if spliced, _ := all.Counts(); spliced != 24 || whole == 0 {
		t.Fatalf("without a budget: %d families spliced, %d bytes kept; want 24 and some", spliced, whole)
	}

	r := NewReuse()
	r.maxKept = whole / 3
	changed := base
	for i := range base {
		changed = withFamily(changed, i, func(f *CompactFamily) { f.Values[0]++ })
	}
	for i, compact := range [][]*CompactFamily{base, base, base, base, changed} {
		before, _ := r.Counts()
		raw := reuseAnswer(t, Options{Reuse: r}, mfs, compact)
		if got, want := oneGzipMember(t, raw), string(answerText(t, mfs, compact)); got != want {
			t.Fatalf("answer %d: decoded answer differs from its families' text:\n%s", i, cmp.Diff(want, got))
		}
		after, _ := r.Counts()
		if kept := r.kept.Load(); kept > r.maxKept {
			t.Errorf("answer %d: %d bytes kept, over the budget of %d", i, kept, r.maxKept)
		}
		if spliced := after - before; i >= 2 && i < 4 && (spliced == 0 || spliced >= 24) {
			t.Errorf("answer %d: %d of 24 families spliced; the budget holds about a third", i, spliced)
		}
	}
	if kept := r.kept.Load(); kept != 0 {
		t.Errorf("after every family changed, %d bytes still counted as kept", kept)
	}
}
