package collectors

import "time"

// goroutines runs functions on goroutines kept from one scrape to the next.
//
// A goroutine started afresh for each collector and scrape begins with a
// small stack and grows it by copying as the collector calls deeper:
// runtime.copystack was ~6 % of a host scrape's CPU with two new goroutines
// per collector. A kept goroutine keeps the stack it grew (the GC halves an
// idle one's at most once per cycle).
//
// Nothing ever waits for a kept goroutine: Go hands the function to one
// that is idle, or starts a new one. A goroutine blocked in a stuck
// collector is simply not idle, so it holds no one up, and goroutines idle
// for longer than idleFor end, so a burst of concurrent scrapes leaves
// nothing behind.
type goroutines struct {
	work    chan func() // unbuffered: a send succeeds only to an idle goroutine
	idleFor time.Duration
}

func newGoroutines(idleFor time.Duration) *goroutines {
	return &goroutines{work: make(chan func()), idleFor: idleFor}
}

// Go runs f on an idle kept goroutine, or on a new one.
func (g *goroutines) Go(f func()) {
	select {
	case g.work <- f:
	default:
		go g.loop(f)
	}
}

func (g *goroutines) loop(f func()) {
	idle := time.NewTimer(g.idleFor)
	defer idle.Stop()
	for {
		f()
		f = nil // not kept alive while idle
		idle.Reset(g.idleFor)
		select {
		case f = <-g.work:
		case <-idle.C:
			return
		}
	}
}
