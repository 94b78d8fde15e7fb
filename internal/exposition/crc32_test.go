package exposition

import (
	"hash/crc32"
	"math/rand/v2"
	"testing"
)

// TestCRC32Combine: the CRC of two pieces joined is the CRC of their
// concatenation, for pieces of every length class (empty, under a word,
// across the powers of two the table holds) and content.
func TestCRC32Combine(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 1<<20+13)
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	for _, cut := range [][2]int{{0, 0}, {0, 1}, {1, 0}, {1, 1}, {3, 5}, {100, 0}, {0, 100}, {4096, 4095}, {1 << 16, 1<<16 + 1}, {7, 1 << 20}, {1 << 20, 13}, {12345, 67890}} {
		a, b := data[:cut[0]], data[cut[0]:cut[0]+cut[1]]
		want := crc32.ChecksumIEEE(data[:cut[0]+cut[1]])
		if got := crc32Combine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), int64(len(b))); got != want {
			t.Errorf("%d + %d bytes: combined %08x, want %08x", len(a), len(b), got, want)
		}
	}
	// Many pieces in a row, as an answer's chunks are joined.
	var crc uint32
	for off := 0; off < len(data); {
		n := min(len(data)-off, int(r.Uint32N(70000)))
		crc = crc32Combine(crc, crc32.ChecksumIEEE(data[off:off+n]), int64(n))
		off += n
	}
	if want := crc32.ChecksumIEEE(data); crc != want {
		t.Errorf("joined in pieces: %08x, want %08x", crc, want)
	}
}
