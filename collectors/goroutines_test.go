package collectors

import (
	"bytes"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// goroutineID is the running goroutine's number, from its stack header
// ("goroutine 42 [running]:").
func goroutineID(t *testing.T) int {
	b := make([]byte, 64)
	b = b[:runtime.Stack(b, false)]
	f := bytes.Fields(b)
	if len(f) < 2 {
		t.Errorf("no goroutine header in %q", b)
		return -1
	}
	id, err := strconv.Atoi(string(f[1]))
	if err != nil {
		t.Errorf("goroutine header %q: %v", b, err)
	}
	return id
}

// alive says whether goroutine id is still in the process.
func alive(id int) bool {
	b := make([]byte, 1<<20)
	b = b[:runtime.Stack(b, true)]
	return bytes.Contains(b, []byte("goroutine "+strconv.Itoa(id)+" ["))
}

func TestGoroutinesReusedOneAfterAnother(t *testing.T) {
	g := newGoroutines(time.Minute)
	ids := map[int]bool{}
	done := make(chan int)
	goWithin(t, g, func() { done <- goroutineID(t) })
	ids[<-done] = true
	for range 20 {
		// The kept goroutine parks on the work channel a moment after
		// its function returns: hand the next one over as soon as it does.
		handOver(t, g, func() { done <- goroutineID(t) })
		ids[<-done] = true
	}
	if len(ids) != 1 {
		t.Errorf("21 functions run one after another used %d goroutines, want 1 kept goroutine", len(ids))
	}
}

// goWithin calls g.Go(f), failing the test if Go itself waits: it must
// return at once whatever the kept goroutines are doing.
func goWithin(t *testing.T, g *goroutines, f func()) {
	t.Helper()
	returned := make(chan struct{})
	go func() {
		g.Go(f)
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Go did not return in 10 s")
	}
}

// handOver gives f to an idle goroutine of g, waiting for one to be idle.
func handOver(t *testing.T, g *goroutines, f func()) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case g.work <- f:
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no goroutine became idle in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGoroutinesNeverWaitForABlockedOne(t *testing.T) {
	g := newGoroutines(time.Minute)
	release := make(chan struct{})
	blocked := make(chan int)
	goWithin(t, g, func() { blocked <- goroutineID(t); <-release })
	stuck := <-blocked

	done := make(chan int)
	start := time.Now()
	goWithin(t, g, func() { done <- goroutineID(t) })
	select {
	case id := <-done:
		if id == stuck {
			t.Errorf("the second function ran on the blocked goroutine %d", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a function waited for a goroutine blocked in another")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s", d)
	}
	close(release)
}

func TestGoroutinesEndWhenIdle(t *testing.T) {
	g := newGoroutines(20 * time.Millisecond)
	done := make(chan int)
	goWithin(t, g, func() { done <- goroutineID(t) })
	id := <-done
	deadline := time.Now().Add(10 * time.Second)
	for alive(id) {
		if time.Now().After(deadline) {
			t.Fatalf("goroutine %d still there 10 s after its work, idle limit 20 ms", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
