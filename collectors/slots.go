package collectors

import (
	"context"
	"sync"
)

// slots bounds how many collector runs go at once (MaxConcurrency) without
// a goroutine per run waiting for its turn: a run that finds every slot
// taken is queued, and whoever frees a slot hands it to the first queued
// run, which the freeing goroutine then runs itself.
//
// With a goroutine per run blocked on a channel of slots, a host scrape
// kept one goroutine per collector (~50), each with the stack it grew: ~1 MB
// of stacks, which the GC's goal counts too. Handed over, the slots keep at
// most MaxConcurrency goroutines running collectors.
type slots struct {
	mu    sync.Mutex
	free  int
	queue []*queued // first in, first out
}

// queued is a run waiting for a slot until its context ends.
type queued struct {
	ctx  context.Context
	x    *execution
	stop func() bool // stops the callback that finishes it at ctx's end
}

func newSlots(n int) *slots { return &slots{free: n} }

// take takes a free slot for x, or queues x: then a later handOff gives x
// the slot, or at ctx's end x is finished as a timeout.
func (s *slots) take(ctx context.Context, x *execution) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free > 0 {
		s.free--
		return true
	}
	q := &queued{ctx: ctx, x: x}
	q.stop = context.AfterFunc(ctx, func() {
		if s.remove(q) {
			x.finish(output{err: ErrTimeout})
		}
	})
	s.queue = append(s.queue, q)
	return false
}

// remove takes q out of the queue; false if a handOff took it first.
func (s *slots) remove(q *queued) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, w := range s.queue {
		if w == q {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			return true
		}
	}
	return false
}

// handOff passes the caller's slot to the first queued run whose context
// has not ended and returns it; with none, the slot is freed and handOff
// returns nil. A queued run whose context ended meanwhile is finished as a
// timeout here, for its callback found it gone from the queue.
func (s *slots) handOff() (context.Context, *execution) {
	var expired []*execution
	defer func() {
		for _, x := range expired {
			x.finish(output{err: ErrTimeout})
		}
	}()
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) > 0 {
		q := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		if q.stop() {
			return q.ctx, q.x
		}
		expired = append(expired, q.x)
	}
	s.queue = nil // let the backing array go
	s.free++
	return nil, nil
}
