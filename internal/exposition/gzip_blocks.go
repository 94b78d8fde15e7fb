package exposition

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
)

// With Options.ParallelGzip, a large answer's gzip is compressed in
// blocks, two at a time: while the text goes on into one block, the
// block before it is compressed on another goroutine, and the last block
// on this one while the other finishes. A 1,000-container answer's
// compression (a fifth of its CPU) so runs beside its text, on both cores
// of a small node.
// The answer stays one gzip member, which every reader reads whole (curl
// and wget stop after the first member of several; see
// docs/performance.md): each block is an independent deflate stream
// ended by a sync flush (byte-aligned, not final), the last one by a
// final block, and a deflate stream may be cut into such pieces because a
// decoder only needs each back-reference to fall within what it has
// already decoded. A block does not refer to the one before it, which
// costs ~1 % more output than one stream; compressed one after another,
// the blocks cost the CPU of one stream (with a dictionary, each would
// compress the end of the block before it again). Run beside the text,
// the same compression takes more CPU on the test machine (Options).
// klauspost/compress's flate writes the blocks; the member's 10-byte
// header and 8-byte trailer (RFC 1952) are written here because its gzip
// writer compresses on one goroutine only. klauspost/pgzip does all of
// this, but its buffers come from sync.Pools that every GC empties, and
// at 1,000 containers it kept 47–78 MiB resident against 29 MiB
// (docs/performance.md); these two blocks are pooled whole, each with its
// compressor (~1.4 MB once used).
const (
	// blockSize is the text compressed by one goroutine at a time:
	// large enough that a block's cold start costs little output, small
	// enough that the last block, compressed after the text ends, is a
	// small part of the answer.
	blockSize = 256 << 10
)

// gzipHeader is the member's header as klauspost/compress/gzip writes it
// at BestSpeed (no name, extra flags 4 for the fastest compressor,
// operating system 255 for unknown), but for the modification time: 0,
// none, where klauspost's writer puts a zero time.Time cut to 32 bits.
var gzipHeader = [10]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}

// gzipBlock is one block of text and its compressed form.
type gzipBlock struct {
	in  []byte
	out bytes.Buffer
	fw  *flate.Writer
	// done is closed by the goroutine compressing the block; nil when
	// the block is not being compressed or its output has been written.
	done chan struct{}
}

// compress turns in into out: a piece of the deflate stream, final or
// ended by a sync flush. Writing into a bytes.Buffer cannot fail.
func (b *gzipBlock) compress(final bool) {
	b.out.Reset()
	if b.fw == nil {
		fw, err := flate.NewWriter(&b.out, gzipLevel)
		if err != nil { // only for a level out of range
			panic(err)
		}
		b.fw = fw
	} else {
		b.fw.Reset(&b.out)
	}
	b.fw.Write(b.in)
	if final {
		b.fw.Close()
	} else {
		b.fw.Flush()
	}
}

// blockGzip writes one gzip member compressed in blocks. Write and Close
// are called from one goroutine; Close (or release) waits for the
// others.
type blockGzip struct {
	dst    io.Writer
	blocks [2]gzipBlock
	cur    int // the block being filled
	crc    uint32
	size   uint32 // ISIZE: the text's length modulo 2^32
	header bool
	err    error // the first error writing to dst
}

var blockGzips = sync.Pool{New: func() any {
	z := &blockGzip{}
	for i := range z.blocks {
		z.blocks[i].in = make([]byte, 0, blockSize)
	}
	return z
}}

func getBlockGzip(dst io.Writer) *blockGzip {
	z := blockGzips.Get().(*blockGzip)
	z.dst, z.cur, z.crc, z.size, z.header, z.err = dst, 0, 0, 0, false, nil
	z.blocks[0].in = z.blocks[0].in[:0]
	return z
}

// release waits for the blocks still being compressed and returns z to
// its pool.
func (z *blockGzip) release() {
	for i := range z.blocks {
		if b := &z.blocks[i]; b.done != nil {
			<-b.done
			b.done = nil
		}
	}
	z.dst = nil // do not keep the connection reachable from the pool
	blockGzips.Put(z)
}

func (z *blockGzip) Write(p []byte) (int, error) {
	if err := z.writeHeader(); err != nil {
		return 0, err
	}
	n := len(p)
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p)
	z.size += uint32(n)
	for len(p) > 0 {
		b := &z.blocks[z.cur]
		k := min(len(p), blockSize-len(b.in))
		b.in = append(b.in, p[:k]...)
		p = p[k:]
		if len(b.in) < blockSize {
			continue
		}
		done := make(chan struct{})
		b.done = done
		go func() {
			b.compress(false)
			close(done)
		}()
		// Go on into the other block once its output is written.
		z.cur ^= 1
		if err := z.flush(&z.blocks[z.cur]); err != nil {
			return n - len(p), err
		}
		z.blocks[z.cur].in = z.blocks[z.cur].in[:0]
	}
	return n, nil
}

func (z *blockGzip) writeHeader() error {
	if z.err != nil || z.header {
		return z.err
	}
	z.header = true
	_, z.err = z.dst.Write(gzipHeader[:])
	return z.err
}

// flush waits for b's goroutine, if it runs, and writes b's output.
func (z *blockGzip) flush(b *gzipBlock) error {
	if b.done == nil {
		return z.err
	}
	<-b.done
	b.done = nil
	if z.err == nil {
		_, z.err = z.dst.Write(b.out.Bytes())
	}
	return z.err
}

// Close compresses the last block here while the other finishes, writes
// both in order and the member's trailer: CRC-32 and length.
func (z *blockGzip) Close() error {
	if err := z.writeHeader(); err != nil {
		return err
	}
	last := &z.blocks[z.cur]
	last.compress(true)
	if err := z.flush(&z.blocks[z.cur^1]); err != nil {
		return err
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], z.crc)
	binary.LittleEndian.PutUint32(trailer[4:], z.size)
	for _, p := range [][]byte{last.out.Bytes(), trailer[:]} {
		if _, z.err = z.dst.Write(p); z.err != nil {
			break
		}
	}
	return z.err
}
