package refresh

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testclock"
)

// counter is a fetch function that returns how often it was called, and
// blocks on gate when it is set.
type counter struct {
	mu    sync.Mutex
	n     int
	gate  chan struct{}
	start chan struct{} // receives once per call, when set
}

func (c *counter) fetch(context.Context) int {
	if c.start != nil {
		c.start <- struct{}{}
	}
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}

func (c *counter) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// waitFor polls cond; the test fails after 10 s (a generous bound, not a
// timing assertion: cond depends on a goroutine having run).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestGetWaitsForFirstThenNeverWaits(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Unix(1000, 0))
	c := &counter{}
	v := New(c.fetch, time.Minute, clk.Now)
	if got, ok := v.Get(context.Background()); !ok || got != 1 {
		t.Fatalf("first Get = %d, %v; want 1, true", got, ok)
	}
	// Within the interval: cached, no fetch.
	clk.Advance(59 * time.Second)
	if got, _ := v.Get(context.Background()); got != 1 || c.calls() != 1 {
		t.Fatalf("Get within the interval = %d after %d fetches; want the cached 1 and no new fetch", got, c.calls())
	}
	// Past the interval: the stale value is returned at once, a re-fetch runs behind.
	c.gate = make(chan struct{})
	clk.Advance(time.Second)
	if got, ok := v.Get(context.Background()); !ok || got != 1 {
		t.Fatalf("stale Get = %d, %v; want the stale 1 without waiting", got, ok)
	}
	close(c.gate)
	waitFor(t, func() bool { got, _ := v.Peek(); return got == 2 })
}

func TestGetHonoursContextBeforeFirstValue(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Unix(1000, 0))
	c := &counter{gate: make(chan struct{})}
	v := New(c.fetch, time.Minute, clk.Now)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := v.Get(ctx); ok {
		t.Fatal("Get with a done context reported a value before any fetch returned")
	}
	if _, ok := v.Peek(); ok {
		t.Fatal("Peek reported a value before any fetch returned")
	}
	close(c.gate)
	if got, ok := v.Get(context.Background()); !ok || got != 1 {
		t.Fatalf("Get after the fetch returned = %d, %v; want 1, true (the first fetch, not a second)", got, ok)
	}
}

func TestOneFetchAtATime(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Unix(1000, 0))
	c := &counter{gate: make(chan struct{}), start: make(chan struct{}, 100)}
	v := New(c.fetch, time.Second, clk.Now)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v.Peek()
			v.Poke(0)
		}()
	}
	wg.Wait()
	clk.Advance(time.Hour) // even a long-overdue value is not fetched twice at once
	v.Peek()
	<-c.start // the one fetch, blocked on the gate
	select {
	case <-c.start:
		t.Error("a second fetch started while the first was running")
	case <-time.After(50 * time.Millisecond): // a bound for a goroutine to start, not a timing assertion
	}
	close(c.gate)
}

func TestPokeIsRateLimited(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Unix(1000, 0))
	c := &counter{}
	v := New(c.fetch, time.Hour, clk.Now)
	v.Get(context.Background())
	for range 10 {
		v.Poke(5 * time.Second)
	}
	if n := c.calls(); n != 1 {
		t.Fatalf("pokes within the gap fetched %d times; want only the first fetch", n)
	}
	clk.Advance(5 * time.Second)
	v.Poke(5 * time.Second)
	waitFor(t, func() bool { got, _ := v.Peek(); return got == 2 })
	v.Poke(5 * time.Second)
	if n := c.calls(); n != 2 {
		t.Errorf("%d fetches; want 2 (one poke after the gap)", n)
	}
}

func TestPeekStartsFirstFetchWithoutWaiting(t *testing.T) {
	t.Parallel()
	clk := testclock.New(time.Unix(1000, 0))
	c := &counter{gate: make(chan struct{}), start: make(chan struct{}, 1)}
	v := New(c.fetch, time.Minute, clk.Now)
	if _, ok := v.Peek(); ok {
		t.Fatal("Peek returned a value before any fetch")
	}
	<-c.start // the fetch started although nobody waits for it
	close(c.gate)
	waitFor(t, func() bool { got, ok := v.Peek(); return ok && got == 1 })
}
