package exposition

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"

	dto "github.com/prometheus/client_model/go"
)

// Reuse keeps the compressed text of the compact families whose series
// did not change from one gzip answer to the next, and splices it into
// the answers after instead of writing and compressing the family again.
// Text and gzip are ~85 % of writing a container-layer answer, and on a
// node many of its families hold still between scrapes: the limits
// (container_spec_*), start and creation times, thread limits, most
// network error counters, and the counters of idle containers (40 % of
// the series on the test node, docs/performance.md).
//
// A family is its own piece of the deflate stream then: the compressor
// starts afresh before it and is flushed after it (byte-aligned, not
// final), so that its compressed text does not refer to what came
// before it and can follow any other piece; its text's CRC-32 is kept
// with it (crc32Combine). A family is kept once its series are the same
// as in the answer before, by label set (the same LabelSet, which never
// changes) and value (bit for bit), with the same help and type; it is
// spliced while that holds and written again, and forgotten, as soon as
// one value, label set or series differs. Only families the text writer
// writes are kept (legacy names: the same text whatever the escaping
// scheme asked for). One Reuse serves every path and answer of a
// process; answers of different paths that hold the same family name
// only make it be written more often. Its memory is the kept pieces (at
// most maxKeptBytes) and a reference to each family's last label sets
// and values.
type Reuse struct {
	mu       sync.Mutex
	families map[string]*reusedFamily

	// kept is the bytes of the pieces kept, at most maxKept (answers
	// written at once may each add one piece beyond it).
	kept    atomic.Int64
	maxKept int64

	spliced, written atomic.Int64
}

// maxKeptBytes bounds the compressed text a Reuse keeps: the pieces of
// 1,000 containers' answer, all held still, are 2.9 MB, and what is kept
// stays in the heap, whose GC goal it doubles. A node whose counters
// move keeps far less (~0.2 MB of the test node's 0.5 MB answer).
const maxKeptBytes = 2 << 20

// NewReuse returns an empty Reuse.
func NewReuse() *Reuse {
	return &Reuse{families: map[string]*reusedFamily{}, maxKept: maxKeptBytes}
}

// Counts returns how many families answers spliced from kept text and
// how many they wrote, since the Reuse was made.
func (r *Reuse) Counts() (spliced, written int64) {
	return r.spliced.Load(), r.written.Load()
}

// reusedFamily is the last answer's form of a family.
type reusedFamily struct {
	mu     sync.Mutex
	help   string
	typ    dto.MetricType
	labels []*LabelSet
	values []float64
	piece  *piece // the family's compressed text, while it holds still
}

// piece is a family's compressed text, never modified once made.
type piece struct {
	b   []byte
	crc uint32 // of the text
	n   int64  // the text's length
}

func (r *Reuse) family(name string) *reusedFamily {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.families[name]
	if e == nil {
		e = &reusedFamily{}
		r.families[name] = e
	}
	return e
}

// same says whether f has the series, help and type e last had.
func (e *reusedFamily) same(f *CompactFamily) bool {
	if e.help != f.Help || e.typ != f.Type || len(e.values) != len(f.Values) || len(e.labels) != len(f.Labels) {
		return false
	}
	for i, v := range f.Values {
		if math.Float64bits(v) != math.Float64bits(e.values[i]) {
			return false
		}
	}
	if len(f.Labels) > 0 && &f.Labels[0] == &e.labels[0] {
		return true // the same list of label sets, which the container layer shares between families
	}
	for i, l := range f.Labels {
		if l != e.labels[i] {
			return false
		}
	}
	return true
}

// lookup returns f's kept piece when f is as it was; otherwise it takes
// f as the family's last form, and says whether f was as it was (so that
// the piece about to be written can be kept).
func (r *Reuse) lookup(f *CompactFamily) (kept *piece, unchanged bool, e *reusedFamily) {
	e = r.family(f.Name)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.same(f) {
		return e.piece, true, e
	}
	// f's own slices, not copies: a compact family is not modified once
	// answered, and the container layer's families share their lists of
	// label sets, so a copy would cost more.
	if e.piece != nil {
		r.kept.Add(-int64(len(e.piece.b)))
	}
	e.help, e.typ, e.piece = f.Help, f.Type, nil
	e.labels, e.values = f.Labels, f.Values
	return nil, false, e
}

// keep keeps p as f's piece in e, unless the family has changed
// meanwhile (another answer's, written at the same time) or the pieces
// kept would outgrow maxKept; then it is written again next time.
func (r *Reuse) keep(e *reusedFamily, f *CompactFamily, p *piece) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.same(f) || e.piece != nil || r.kept.Load()+int64(len(p.b)) > r.maxKept {
		return
	}
	r.kept.Add(int64(len(p.b)))
	e.piece = p
}

// writeFamilies writes c's families into the chunk, each as its own
// piece of the deflate stream, splicing the kept pieces of families that
// hold still.
func (w *chunkWorker) writeFamilies(c *gzipChunk, write func(f answerFamily) (bool, error)) {
	for _, f := range c.fams {
		var e *reusedFamily
		unchanged := false
		if f.compact != nil {
			var kept *piece
			kept, unchanged, e = w.reuse.lookup(f.compact)
			if kept != nil {
				c.out.Write(kept.b)
				c.crc = crc32Combine(c.crc, kept.crc, kept.n)
				c.size += kept.n
				w.reuse.spliced.Add(1)
				continue
			}
			w.reuse.written.Add(1)
		}
		// A fresh piece: the compressor forgets what it compressed
		// before, and its output goes on after the chunk's.
		start := c.out.Len()
		w.fw.Reset(c.out)
		w.crc, w.n = 0, 0
		byText, err := write(f)
		if err != nil {
			c.errs = append(c.errs, err)
		}
		_ = w.buf.Flush()
		_ = w.fw.Flush()
		c.crc = crc32Combine(c.crc, w.crc, w.n)
		c.size += w.n
		// Only a family the text writer wrote is kept: expfmt's text
		// of other names depends on the escaping scheme asked for.
		if unchanged && byText && err == nil {
			w.reuse.keep(e, f.compact, &piece{b: slices.Clone(c.out.Bytes()[start:]), crc: w.crc, n: w.n})
		}
	}
	if c.final {
		w.fw.Reset(c.out)
		_ = w.fw.Close() // the member's final block, empty
	}
}
