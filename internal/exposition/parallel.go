package exposition

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
	"github.com/prometheus/common/expfmt"
)

// A large text answer compressed with gzip is written in pieces on all
// the threads Go runs (Options.ParallelGzip), or on the answering
// goroutine alone to reuse the pieces of families that hold still
// (Options.Reuse, reuse.go): its families are cut into
// chunks of about chunkText bytes of text, and each goroutine takes the
// next chunk, writes its text and compresses it there, while its text is
// still in the core's cache. Compression is most of an answer's cost
// (at 1,000 containers ~55 of its ~64 ms, BenchmarkCadvisorScrape's
// write/gzip), and so the answer takes about half the time on two cores
// for the same CPU. The chunks' output is sent in order as it is ready.
//
// The answer stays one gzip member, which every reader reads whole (curl
// and wget stop after the first member of several; see
// docs/performance.md): each chunk is an independent deflate stream ended
// by a sync flush (byte-aligned, not final), the last one by a final
// block, and a deflate stream may be cut into such pieces because a
// decoder needs each back-reference only to fall within what it has
// already decoded. A chunk does not refer to the one before it, which
// costs well under 1 % of output at this size. Each chunk keeps the CRC
// of its text, which crc32Combine joins into the member's trailer.
// klauspost/compress's flate writes the chunks; the member's 10-byte
// header and 8-byte trailer (RFC 1952) are written here because its gzip
// writer compresses on one goroutine only. klauspost/pgzip does
// something like this for a stream of bytes, but its buffers come from
// sync.Pools that every GC empties, and at 1,000 containers it kept
// 47–78 MiB resident against 29 MiB (docs/performance.md).
const (
	// chunkText is the text one goroutine writes and compresses at a
	// time: small enough that the chunks left when the first goroutine
	// runs out of them hold it up little, large enough that a chunk's
	// cold start costs little output.
	chunkText = 1 << 20
	// parallelMin is the least text, estimated, written in chunks; below
	// it the answer is compressed on one goroutine (sizedGzip).
	parallelMin = 2 * chunkText
)

// gzipHeader is the member's header as klauspost/compress/gzip writes it
// at BestSpeed (no name, extra flags 4 for the fastest compressor,
// operating system 255 for unknown), but for the modification time: 0,
// none, where klauspost's writer puts a zero time.Time cut to 32 bits.
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}

// textSize estimates the text of a family: its series' names, label
// text as long as a sample of its series' and a value each. It only
// chooses and cuts chunks, so it need not be exact.
func (a answerFamily) textSize() int {
	const value = 12 // a space, a value and a newline
	if f := a.compact; f != nil {
		// The label sets of up to 16 series spread over the family: the
		// first alone is often the root cgroup's, far shorter than the
		// containers'.
		labels, step := 0, max(1, len(f.Labels)/16)
		for i := 0; i < len(f.Labels); i += step {
			labels += f.Labels[i].textLen()
		}
		if len(f.Labels) > 0 {
			labels /= (len(f.Labels) + step - 1) / step
		}
		return len(f.Help) + f.Len()*(len(f.Name)+labels+value)
	}
	labels := 0
	if len(a.full.Metric) > 0 {
		for _, lp := range a.full.Metric[0].Label {
			labels += len(lp.GetName()) + len(lp.GetValue()) + 4
		}
	}
	return len(a.full.GetHelp()) + len(a.full.Metric)*(len(a.full.GetName())+labels+value)
}

// gzipChunk is a run of families and, once written, their compressed text.
type gzipChunk struct {
	fams  []answerFamily
	out   *bytes.Buffer
	crc   uint32 // of the text
	size  int64  // of the text
	final bool   // the last chunk: its deflate stream ends the member's
	errs  []error
	done  chan struct{}
}

// chunkWorker is what a goroutine writing chunks keeps from one chunk to
// the next: its text writer (sharing the answer's number, so that a label
// set's second series in the answer is told apart from the next answer's
// first), its buffer in front of the compressor and the compressor.
type chunkWorker struct {
	tw    *textWriter
	buf   *bufio.Writer
	fw    *flate.Writer
	reuse *Reuse // or nil
	// the CRC and length of the text written since they were last
	// reset: a chunk's, or with reuse a family's
	crc uint32
	n   int64
}

// Write takes text: it is checksummed and compressed into the chunk.
// Writing into a bytes.Buffer cannot fail.
func (w *chunkWorker) Write(p []byte) (int, error) {
	w.crc = crc32.Update(w.crc, crc32.IEEETable, p)
	w.n += int64(len(p))
	return w.fw.Write(p)
}

var (
	flateWriters = sync.Pool{New: func() any {
		fw, err := flate.NewWriter(nil, gzipLevel)
		if err != nil { // only for a level out of range
			panic(fmt.Sprintf("flate level %d: %v", gzipLevel, err))
		}
		return fw
	}}
	chunkOuts = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// maxChunkOut is the largest output buffer pooled; chunks compress to
// ~10 % of chunkText, and noise (which would be stored) to a little more
// than it.
const maxChunkOut = 2 * chunkText

// write writes c's families as text, compressed: with reuse each family
// as a piece of its own (writeFamilies). A family the text writer leaves
// to expfmt is encoded by it, in text format.
func (w *chunkWorker) write(c *gzipChunk, format expfmt.Format) {
	c.out = chunkOuts.Get().(*bytes.Buffer)
	c.out.Reset()
	w.fw.Reset(c.out)
	w.buf.Reset(w)
	w.crc, w.n = 0, 0
	enc := expfmt.NewEncoder(w.buf, format)
	// write writes f and says whether the text writer wrote it (legacy
	// names, the same text in every format and escaping scheme of the
	// text format) rather than expfmt.
	write := func(f answerFamily) (bool, error) {
		byText, err := encodeFamily(w.tw, w.buf, enc, f)
		if err != nil {
			return byText, fmt.Errorf("%s: %w", f.name(), err)
		}
		return byText, nil
	}
	if w.reuse != nil {
		w.writeFamilies(c, write)
		return
	}
	for _, f := range c.fams {
		if _, err := write(f); err != nil {
			c.errs = append(c.errs, err)
		}
	}
	_ = w.buf.Flush()
	if c.final {
		_ = w.fw.Close()
	} else {
		_ = w.fw.Flush()
	}
	c.crc, c.size = w.crc, w.n
}

// cutChunks cuts fams into chunks of about chunkText of text each, a
// family never split.
func cutChunks(fams []answerFamily) []*gzipChunk {
	var chunks []*gzipChunk
	start, size := 0, 0
	for i, f := range fams {
		size += f.textSize()
		if size >= chunkText || i == len(fams)-1 {
			chunks = append(chunks, &gzipChunk{fams: fams[start : i+1], done: make(chan struct{})})
			start, size = i+1, 0
		}
	}
	if len(chunks) == 0 { // no families: one empty chunk, the final block
		chunks = append(chunks, &gzipChunk{done: make(chan struct{})})
	}
	chunks[len(chunks)-1].final = true
	return chunks
}

// writeParallelGzip writes chunks (cutChunks') as one gzip member to dst, on
// up to workers goroutines (this one among them), and returns the errors
// encoding families and the first error writing to dst. At most
// 2×workers chunks are written ahead of the one being sent, so that a
// scraper reading slowly holds a few chunks' output in memory, not the
// answer's. Once dst fails the chunks being written are waited for, no
// other is written, and nothing more is sent.
func writeParallelGzip(dst io.Writer, chunks []*gzipChunk, format expfmt.Format, workers int, reuse *Reuse) (encodeErrs []error, writeErr error) {
	workers = max(1, min(workers, len(chunks)))
	answer := answers.Add(1)
	// A slot is taken before a chunk is claimed and given back when its
	// output is sent.
	slots := make(chan struct{}, 2*workers)
	var next atomic.Int64
	// Once dst fails, the chunks claimed after are not written: the
	// scraper is gone.
	var failed atomic.Bool
	write := func(w *chunkWorker, i int) {
		if !failed.Load() {
			w.write(chunks[i], format)
		}
		close(chunks[i].done)
	}
	claim := func() (int, bool) {
		i := int(next.Add(1) - 1)
		if i >= len(chunks) {
			<-slots
			return i, false
		}
		return i, true
	}
	newWorker := func() *chunkWorker {
		w := &chunkWorker{tw: getTextWriter(), buf: bufWriters.Get().(*bufio.Writer), fw: flateWriters.Get().(*flate.Writer), reuse: reuse}
		w.tw.answer = answer
		return w
	}
	releaseWorker := func(w *chunkWorker) {
		w.tw.release()
		w.buf.Reset(nil)
		bufWriters.Put(w.buf)
		w.fw.Reset(io.Discard) // do not keep the last chunk's buffer reachable
		flateWriters.Put(w.fw)
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(func() {
			w := newWorker()
			defer releaseWorker(w)
			for {
				slots <- struct{}{}
				i, ok := claim()
				if !ok {
					return
				}
				write(w, i)
			}
		})
	}

	// This goroutine writes chunks too, and sends each chunk's output,
	// in order, once it and those before it are done.
	sent := 0
	var crc uint32
	var size int64
	sendDone := func() {
		for ; sent < len(chunks); sent++ {
			c := chunks[sent]
			select {
			case <-c.done:
			default:
				return
			}
			if c.out != nil {
				if writeErr == nil {
					if _, writeErr = dst.Write(c.out.Bytes()); writeErr != nil {
						failed.Store(true)
					}
				}
				if c.out.Cap() <= maxChunkOut {
					chunkOuts.Put(c.out)
				}
				c.out = nil
			}
			crc = crc32Combine(crc, c.crc, c.size)
			size += c.size
			encodeErrs = append(encodeErrs, c.errs...)
			<-slots
		}
	}
	if _, writeErr = dst.Write(gzipHeader[:]); writeErr != nil {
		failed.Store(true)
	}
	self := newWorker()
	for more := true; more; {
		sendDone()
		if sent == len(chunks) {
			break
		}
		// When every slot is taken, chunks[sent] has been claimed and
		// will be done: wait for it rather than for a slot.
		select {
		case slots <- struct{}{}:
			var i int
			if i, more = claim(); more {
				write(self, i)
			}
		case <-chunks[sent].done:
		}
	}
	releaseWorker(self)
	for sent < len(chunks) {
		<-chunks[sent].done
		sendDone()
	}
	wg.Wait()
	if writeErr == nil {
		var trailer [8]byte
		binary.LittleEndian.PutUint32(trailer[:4], crc)
		binary.LittleEndian.PutUint32(trailer[4:], uint32(size)) // ISIZE: the length modulo 2^32
		_, writeErr = dst.Write(trailer[:])
	}
	return encodeErrs, writeErr
}
