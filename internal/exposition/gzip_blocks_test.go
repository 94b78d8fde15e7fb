package exposition

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
)

// blockText is n bytes of exposition-like text: what the blocks are for.
func blockText(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "container_memory_rss{container=%q,id=\"/kubepods.slice/pod-%d\",namespace=\"ns-%d\"} %d\n", fmt.Sprint("c", i%17), i, i%5, i*4096)
	}
	return b.Bytes()[:n]
}

// noise is n bytes that do not compress: each block is stored.
func noise(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestBlockGzip: whatever the length and however it is written, the text
// comes back from one gzip member, read by the standard library's reader.
func TestBlockGzip(t *testing.T) {
	for _, content := range []struct {
		name string
		gen  func(int) []byte
	}{{"text", blockText}, {"noise", noise}} {
		for _, size := range []int{0, 1, bufSize, blockSize - 1, blockSize, blockSize + 1, 2 * blockSize, 2*blockSize + 1, 5*blockSize + 12345} {
			for _, chunk := range []int{bufSize, 100_003, 7*blockSize + 1} {
				if size > 3*blockSize && content.name == "noise" && chunk != bufSize {
					continue // the same paths as the smaller sizes, and slow
				}
				t.Run(fmt.Sprintf("%s/%d/by-%d", content.name, size, chunk), func(t *testing.T) {
					text := content.gen(size)
					var out bytes.Buffer
					z := getBlockGzip(&out)
					defer z.release()
					for p := text; len(p) > 0; {
						k := min(chunk, len(p))
						n, err := z.Write(p[:k])
						if n != k || err != nil {
							t.Fatalf("Write(%d bytes) = %d, %v", k, n, err)
						}
						p = p[k:]
					}
					if err := z.Close(); err != nil {
						t.Fatal(err)
					}
					if got := oneGzipMember(t, out.Bytes()); got != string(text) {
						t.Fatalf("decoded %d bytes, want the %d written", len(got), len(text))
					}
				})
			}
		}
	}
}

// TestBlockGzipSmallWrites: many small writes, as a text writer without
// a buffer would make, cross the block boundaries mid-write.
func TestBlockGzipSmallWrites(t *testing.T) {
	text := blockText(3*blockSize + 77)
	var out bytes.Buffer
	z := getBlockGzip(&out)
	defer z.release()
	for i := 0; i < len(text); i += 997 {
		if _, err := z.Write(text[i:min(i+997, len(text))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	if got := oneGzipMember(t, out.Bytes()); got != string(text) {
		t.Fatalf("decoded %d bytes, want the %d written", len(got), len(text))
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

// TestBlockGzipWriteError: a failed write to the connection is returned by
// Write or Close, later writes return it too, and release waits for the
// goroutine still compressing, so none is left behind.
func TestBlockGzipWriteError(t *testing.T) {
	text := blockText(6*blockSize + 5)
	var full bytes.Buffer
	z := getBlockGzip(&full)
	z.Write(text)
	z.Close()
	z.release()
	before := runtime.NumGoroutine()
	for _, left := range []int{0, 5, 10, 11, full.Len() / 3, full.Len() / 2, full.Len() - 8, full.Len() - 1} {
		t.Run(fmt.Sprint(left), func(t *testing.T) {
			z := getBlockGzip(&failingWriter{left: left})
			var err error
			for p := text; len(p) > 0 && err == nil; {
				k := min(bufSize, len(p))
				_, err = z.Write(p[:k])
				p = p[k:]
			}
			if err == nil {
				err = z.Close()
			} else if cerr := z.Close(); !errors.Is(cerr, errGone) {
				t.Errorf("Close after a failed Write = %v, want %v", cerr, errGone)
			}
			if !errors.Is(err, errGone) {
				t.Errorf("writing %d bytes of answer into a connection that takes %d: %v, want %v", full.Len(), left, err, errGone)
			}
			z.release()
		})
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // a goroutine ends just after closing its channel
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after the failed answers, %d before", n, before)
	}
}

// TestBlockGzipConcurrentAnswers: answers written at once each get their
// own blocks from the pool (run with -race).
func TestBlockGzipConcurrentAnswers(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5 {
				text := blockText(blockSize*(g+1) + i*1000)
				text[len(text)-1] = byte('a' + g)
				var out bytes.Buffer
				z := getBlockGzip(&out)
				z.Write(text)
				if err := z.Close(); err != nil {
					t.Error(err)
				}
				z.release()
				if got, err := decodeOneMember(out.Bytes()); err != nil || got != string(text) {
					t.Errorf("answer %d of writer %d: decoded %d bytes (%v), want the %d written", i, g, len(got), err, len(text))
				}
			}
		})
	}
	wg.Wait()
}
