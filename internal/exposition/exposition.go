// Package exposition writes a metrics answer: the format and content
// encoding negotiated as promhttp negotiates them, and written with
// cheaper compression.
//
// promhttp (client_golang v1.25) is not used for this because it
// compresses with compress/gzip at its default level and offers no way to
// choose another (OfferedCompressions picks encodings, not levels), and
// because it answers only from a Gatherer of client_model families, which
// leaves no room for an answer written any other way. gzip at
// compress/gzip's default level costs as much CPU as gathering 1,000
// containers (docs/performance.md); klauspost/compress's at BestSpeed
// costs a fifth of that (BenchmarkCompression). A large gzip answer can
// be written and compressed in chunks on all of Go's threads into one
// gzip member (Options.ParallelGzip, parallel.go).
package exposition

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

const (
	encIdentity = "identity"
	encGzip     = "gzip"
	encZstd     = "zstd"

	// gzipLevel was chosen with BenchmarkCompression over a real
	// kubelet's /metrics/cadvisor (1.4 MB): BestSpeed compresses it 5.4×
	// faster than compress/gzip's default level (promhttp's), to 6.4 %
	// of the text instead of 4.6 %; levels 2–5 cost 1.3–3.2× BestSpeed's
	// time. CPU is what a node is short of; 30 KB more per MB of text on
	// the scrape's connection is not.
	gzipLevel = gzip.BestSpeed

	// bufSize is the buffer between the encoder and the connection (or the
	// compressor): net/http's own 4 KiB would make one chunk and one
	// write system call per 4 KiB of a 16 MB answer.
	bufSize = 64 << 10
)

// offeredEncodings are the content encodings offered, in promhttp's order
// of preference on a tie (identity first, as promhttp lists it).
var offeredEncodings = []string{encIdentity, encGzip, encZstd}

// Pools of writers: a BestSpeed gzip writer holds ~1.6 MB of compressor
// state once used and a zstd encoder a few MB, too much to allocate per
// scrape (a stateless gzip writer holds only its header state). Each pooled
// object has a fixed size (bufio.Writer does not grow, the compressors'
// windows are bounded by their level and window options), so the pools
// cannot hold on to a large scrape's memory.
var (
	gzipWriters    = sync.Pool{New: func() any { return newGzipWriter(gzipLevel) }}
	statelessGzips = sync.Pool{New: func() any { return newGzipWriter(gzip.StatelessCompression) }}
	zstdWriters    = sync.Pool{New: func() any {
		// SpeedFastest as promhttp's zstd, on one goroutine (a scrape
		// should not take both cores of a small node) and with a 1 MiB
		// window, which bounds its memory.
		w, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20), zstd.WithLowerEncoderMem(true))
		if err != nil { // only for invalid options
			panic(fmt.Sprintf("zstd options: %v", err))
		}
		return w
	}}
	bufWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, bufSize) }}
)

// Write answers r with mfs and compact as promhttp.HandlerFor with
// ContinueOnError would answer with mfs and each compact family's
// MetricFamily, with the same headers and the same decoded body: gatherErr
// is logged, and answered with a 500 only when nothing was gathered; the
// name[] query parameter keeps only the families named. mfs and compact
// are each sorted by name, and no name is in both (the Scraper's Result
// is so); the answer writes them merged by name.
func Write(w http.ResponseWriter, r *http.Request, mfs []*dto.MetricFamily, compact []*CompactFamily, gatherErr error, logf func(msg string, err error)) {
	Options{}.Write(w, r, mfs, compact, gatherErr, logf)
}

// Options are choices in how an answer is written; the zero value is what
// Write does.
type Options struct {
	// ParallelGzip writes a large text answer compressed with gzip
	// (parallelMin of text, the container layer's from ~250 containers)
	// in chunks on GOMAXPROCS goroutines (writeParallelGzip), when that is
	// more than one; otherwise every answer is written on the goroutine
	// answering. At 1,000 containers the answer then takes a quarter
	// less time for the same CPU, and the agent 5–6 MiB more memory
	// (docs/performance.md).
	ParallelGzip bool
	// Reuse, when not nil, keeps the compressed text of the compact
	// families of large gzip answers (parallelMin of text) that hold
	// still from one answer to the next, and splices it into the
	// answers after (reuse.go); such answers are written in chunks
	// (writeParallelGzip) on GOMAXPROCS goroutines with ParallelGzip,
	// on the answering one without.
	Reuse *Reuse
}

// Write is Write with the options o.
func (o Options) Write(w http.ResponseWriter, r *http.Request, mfs []*dto.MetricFamily, compact []*CompactFamily, gatherErr error, logf func(msg string, err error)) {
	if gatherErr != nil {
		logf("error gathering metrics", gatherErr)
		if len(mfs) == 0 && len(compact) == 0 {
			http.Error(w, "An error has occurred while serving metrics:\n\n"+gatherErr.Error(), http.StatusInternalServerError)
			return
		}
	}
	format := expfmt.NegotiateAccept(r.Header, expfmt.DefaultAcceptedFormats()...)
	hdr := w.Header()
	hdr.Add("Vary", "Accept")
	hdr.Add("Vary", "Accept-Encoding")
	hdr.Set("Content-Type", string(format))
	encoding := negotiateEncoding(r.Header)
	if encoding != encIdentity {
		hdr.Set("Content-Encoding", encoding)
	}

	buf := bufWriters.Get().(*bufio.Writer)
	buf.Reset(w)
	defer func() {
		buf.Reset(nil) // do not keep the connection reachable from the pool
		bufWriters.Put(buf)
	}()
	var keep map[string]bool
	if r.URL != nil {
		if names := r.URL.Query()["name[]"]; len(names) > 0 {
			keep = make(map[string]bool, len(names))
			for _, n := range names {
				keep[n] = true
			}
		}
	}
	workers := 1
	if procs := runtime.GOMAXPROCS(0); o.ParallelGzip && procs > 1 {
		workers = procs
	}
	if (workers > 1 || o.Reuse != nil) && encoding == encGzip && format.FormatType() == expfmt.TypeTextPlain {
		var fams []answerFamily
		size := 0
		for f := range inOrder(mfs, compact) {
			if keep == nil || keep[f.name()] {
				fams = append(fams, f)
				size += f.textSize()
			}
		}
		if size >= parallelMin {
			encodeErrs, err := writeParallelGzip(buf, cutChunks(fams), format, workers, o.Reuse)
			for _, err := range encodeErrs {
				logf("error encoding and sending metric family", err)
			}
			if err == nil {
				err = buf.Flush()
			}
			if err != nil {
				// The scraper went away: nothing to answer.
				logf("error writing the answer", err)
			}
			return
		}
	}

	var out io.Writer = buf
	var closeOut func() error
	switch encoding {
	case encGzip:
		gz := &sizedGzip{dst: buf}
		out, closeOut = gz, gz.Close
		defer gz.release()
	case encZstd:
		zw := zstdWriters.Get().(*zstd.Encoder)
		zw.Reset(buf)
		defer zstdWriters.Put(zw)
		out, closeOut = zw, zw.Close
	}

	// Everything is encoded into one buffered writer, so that the text
	// writer's families and expfmt's come out in order; in front of a
	// compressor it is a second buffer, which turns the encoders' small
	// writes into large ones.
	text := buf
	if closeOut != nil {
		text = bufWriters.Get().(*bufio.Writer)
		text.Reset(out)
		defer func() {
			text.Reset(nil)
			bufWriters.Put(text)
		}()
	}
	var tw *textWriter
	if format.FormatType() == expfmt.TypeTextPlain {
		tw = getTextWriter()
		defer tw.release()
	}
	enc := expfmt.NewEncoder(text, format)
	for f := range inOrder(mfs, compact) {
		name := f.name()
		if keep != nil && !keep[name] {
			continue
		}
		if _, err := encodeFamily(tw, text, enc, f); err != nil {
			// As promhttp under ContinueOnError: the status is sent, so
			// log it and go on with the next family.
			logf("error encoding and sending metric family", fmt.Errorf("%s: %w", name, err))
		}
	}
	if c, ok := enc.(expfmt.Closer); ok {
		if err := c.Close(); err != nil {
			logf("error encoding and sending metric family", err)
		}
	}
	if closeOut != nil {
		if err := text.Flush(); err != nil {
			logf("error writing the answer", err)
		}
		if err := closeOut(); err != nil {
			logf("error closing the "+encoding+" stream", err)
		}
	}
	if err := buf.Flush(); err != nil {
		// The scraper went away: nothing to answer.
		logf("error writing the answer", err)
	}
}

// encodeFamily writes f with tw when tw writes such a family (tw is nil
// for formats other than the text format), otherwise with enc, and says
// whether tw wrote it.
func encodeFamily(tw *textWriter, w *bufio.Writer, enc expfmt.Encoder, f answerFamily) (byText bool, err error) {
	if tw != nil {
		var done bool
		if f.compact != nil {
			done, err = tw.writeCompact(w, f.compact)
		} else {
			done, err = tw.writeFamily(w, f.full)
		}
		if done {
			return true, err
		}
	}
	mf := f.full
	if f.compact != nil {
		// Protobuf, or a name the text writer leaves to expfmt.
		mf = f.compact.MetricFamily()
	}
	return false, enc.Encode(mf)
}

func newGzipWriter(level int) *gzip.Writer {
	w, err := gzip.NewWriterLevel(nil, level)
	if err != nil { // only for a level out of range
		panic(fmt.Sprintf("gzip level %d: %v", level, err))
	}
	return w
}

// sizedGzip compresses an answer with a compressor chosen by its size,
// known at its first write: the text buffer (bufSize) in front of it
// writes to it only when full, or at the final flush, so a first write
// shorter than bufSize is the whole answer. An answer that fits in the
// buffer (the host layer's and the agent's own on most nodes) is
// compressed statelessly, which keeps no compressor between scrapes: the
// pooled BestSpeed compressor holds ~1.6 MB once it has compressed 64 KiB
// (its history buffer grows to 640 KB), half the live heap of an agent
// serving only the host layer, and the GC's goal follows the live heap.
// Stateless compression of 54 KB costs ~15 µs more than BestSpeed's and
// its output is ~1.5 % larger. A larger answer (the container layer's)
// gets BestSpeed compressors, which are 1.7× faster than stateless
// compression there and a third smaller (BenchmarkCompression,
// docs/performance.md): the pooled one (or, under Options.ParallelGzip
// or Options.Reuse, a compressor per chunk and thread, writeParallelGzip).
type sizedGzip struct {
	dst io.Writer
	w   io.WriteCloser // the compressor, chosen at the first write
	put func()         // returns w to its pool
}

func (s *sizedGzip) Write(p []byte) (int, error) {
	if s.w == nil {
		s.choose(len(p) < bufSize)
	}
	return s.w.Write(p)
}

func (s *sizedGzip) choose(whole bool) {
	pool := &gzipWriters
	if whole {
		pool = &statelessGzips
	}
	gz := pool.Get().(*gzip.Writer)
	gz.Reset(s.dst)
	// gz still refers to dst when put back: buf, itself pooled and reset.
	s.w, s.put = gz, func() { pool.Put(gz) }
}

// Close ends the gzip stream (an empty answer's too).
func (s *sizedGzip) Close() error {
	if s.w == nil {
		s.choose(true)
	}
	return s.w.Close()
}

// release returns the compressor to its pool.
func (s *sizedGzip) release() {
	if s.put != nil {
		s.put()
		s.w, s.put = nil, nil
	}
}

// negotiateEncoding picks the content encoding of the answer from the
// Accept-Encoding header as promhttp does (its parser is internal to
// client_golang, a copy of golang/gddo's httputil, so it cannot be
// imported): the first offer whose best-matching clause (the encoding or
// "*") has the highest quality, identity without any match, and identity
// too when every match has quality 0 (where promhttp logs an error and
// answers uncompressed). FuzzNegotiateEncoding holds it to promhttp's.
func negotiateEncoding(h http.Header) string {
	best, bestQ := encIdentity, -1.0
	specs := parseAcceptEncoding(h["Accept-Encoding"])
	for _, offer := range offeredEncodings {
		for _, s := range specs {
			if s.q > bestQ && (s.value == "*" || s.value == offer) {
				best, bestQ = offer, s.q
			}
		}
	}
	if bestQ == 0 {
		return encIdentity
	}
	return best
}

type acceptSpec struct {
	value string
	q     float64
}

// parseAcceptEncoding parses Accept-Encoding values with gddo's rules,
// which promhttp uses: tokens (slashes allowed) each with an optional
// ";q=" of 0 or 1 with decimals; the rest of a header value is dropped at
// the first clause that does not parse.
func parseAcceptEncoding(values []string) []acceptSpec {
	var specs []acceptSpec
	for _, s := range values {
		for {
			var spec acceptSpec
			spec.value, s = cutToken(s)
			if spec.value == "" {
				break
			}
			spec.q = 1
			s = skipSpace(s)
			if strings.HasPrefix(s, ";") {
				s = skipSpace(s[1:])
				if !strings.HasPrefix(s, "q=") {
					break
				}
				spec.q, s = cutQuality(s[2:])
				if spec.q < 0 {
					break
				}
			}
			specs = append(specs, spec)
			s = skipSpace(s)
			if !strings.HasPrefix(s, ",") {
				break
			}
			s = skipSpace(s[1:])
		}
	}
	return specs
}

func skipSpace(s string) string {
	return strings.TrimLeft(s, " \t\r\n")
}

// cutToken cuts an RFC 7230 token (slashes allowed) from the front of s.
func cutToken(s string) (token, rest string) {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if c != '/' && (c <= 31 || c >= 127 || strings.IndexByte(" \t\"(),/:;<=>?@[]\\{}", c) >= 0) {
			break
		}
	}
	return s[:i], s[i:]
}

// cutQuality cuts a quality value from the front of s; -1 if there is
// none.
func cutQuality(s string) (q float64, rest string) {
	switch {
	case s == "":
		return -1, ""
	case s[0] == '0':
		q = 0
	case s[0] == '1':
		q = 1
	default:
		return -1, ""
	}
	s = s[1:]
	if !strings.HasPrefix(s, ".") {
		return q, s
	}
	s = s[1:]
	i, n, d := 0, 0, 1
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = n*10 + int(s[i]-'0')
		d *= 10
	}
	return q + float64(n)/float64(d), s[i:]
}
