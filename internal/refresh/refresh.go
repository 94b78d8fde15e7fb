// Package refresh keeps one value fresh without a background loop: a reader
// that finds the value older than its interval starts a re-fetch, one at a
// time, and no reader waits for a re-fetch once a first value exists. The
// kubelet's pod metadata and the kubelet security checks use it, so that an
// idle agent does no work and a slow kubelet never slows a scrape down
// beyond the first one.
package refresh

import (
	"context"
	"sync"
	"time"
)

// Value is a value produced by a fetch function that may be slow.
type Value[T any] struct {
	fetch    func(context.Context) T
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	val     T
	have    bool
	started time.Time     // when the newest fetch started; zero before the first
	running chan struct{} // closed when the fetch in flight returns; nil when none runs
}

// New returns a Value that fetches at most once per interval on demand.
// fetch runs in its own goroutine with a context that is never cancelled,
// so it must bound itself (the kubelet client puts a timeout on every
// request); it is never called concurrently with itself. now is the clock.
func New[T any](fetch func(context.Context) T, interval time.Duration, now func() time.Time) *Value[T] {
	return &Value[T]{fetch: fetch, interval: interval, now: now}
}

// Get returns the newest value. Before the first fetch has returned it
// starts one if needed and waits for it until ctx is done; ok is false when
// ctx ended first. Afterwards it never waits, and starts a re-fetch when the
// newest fetch started at least an interval ago.
func (v *Value[T]) Get(ctx context.Context) (val T, ok bool) {
	v.mu.Lock()
	v.startLocked(v.interval)
	if v.have {
		defer v.mu.Unlock()
		return v.val, true
	}
	wait := v.running
	v.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		var zero T
		return zero, false
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.val, v.have
}

// Peek returns the newest value without ever waiting (ok is false before
// the first fetch has returned) and starts a fetch when the newest one
// started at least an interval ago.
func (v *Value[T]) Peek() (val T, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.startLocked(v.interval)
	return v.val, v.have
}

// Poke asks for an early fetch: it starts one unless one is running or the
// newest started less than minGap ago. Callers may poke on every miss; the
// gap is the rate limit.
func (v *Value[T]) Poke(minGap time.Duration) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.startLocked(minGap)
}

// startLocked starts a fetch unless one is running or the newest started
// less than gap ago. v.mu is held.
func (v *Value[T]) startLocked(gap time.Duration) {
	if v.running != nil {
		return
	}
	now := v.now()
	if !v.started.IsZero() && now.Sub(v.started) < gap {
		return
	}
	v.started = now
	done := make(chan struct{})
	v.running = done
	go func() {
		val := v.fetch(context.Background())
		v.mu.Lock()
		v.val, v.have, v.running = val, true, nil
		v.mu.Unlock()
		close(done)
	}()
}
