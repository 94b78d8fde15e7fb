package cadvisor

import (
	"context"
	"errors"
	"path"

	"github.com/nodeagent/nodeagent/cgroup"
)

// Some cgroup files count a cgroup's whole subtree (cgroup.FS.SubtreeTotals:
// memory.swap.current, memory.events and the PSI files): where one reads
// zero, every cgroup below reads zero too. On most nodes no container
// swaps, few are ever OOM-killed and many pods never wait for memory or
// IO, so reading them in the kubepods slice or a pod first spares reading
// them in every container below: up to five of the dozen files each
// cgroup costs a scrape, and their descriptors' room in the budget.

// readSubtreeTotals reads the subtree files of the cgroups that have
// others below them in this scrape, a level at a time from the top, each
// level in parallel, so that a cgroup below one holding zero inherits the
// zero instead (inherited). It links each cgroup to its nearest ancestor
// in the scrape and leaves in s.early what it read and in s.zero what
// holds zero there.
func (c *cadvisorCollector) readSubtreeTotals(ctx context.Context, scrape []*cgState) {
	for _, s := range scrape {
		for dir := s.entry.Path; dir != "/" && s.parent == nil; {
			dir = path.Dir(dir)
			s.parent = c.states[dir]
		}
		if s.parent != nil {
			s.parent.inner = true
		}
	}
	for i := range c.levels {
		clear(c.levels[i]) // no state of a removed cgroup held past its scrape
		c.levels[i] = c.levels[i][:0]
	}
	for _, s := range scrape {
		if !s.inner {
			continue
		}
		depth := 0
		for p := s.parent; p != nil; p = p.parent {
			depth++
		}
		for len(c.levels) <= depth {
			c.levels = append(c.levels, nil)
		}
		c.levels[depth] = append(c.levels[depth], s)
	}
	for _, level := range c.levels {
		forEachParallel(ctx, len(level), c.workers, func(w, i int) {
			c.readEarly(level[i], &c.bufs[w])
		})
	}
}

// readEarly reads what inner cgroup s does not inherit of the subtree
// files.
func (c *cadvisorCollector) readEarly(s *cgState, buf *[]byte) {
	inherited := c.inherited(s)
	s.zero = inherited
	read := c.subtree &^ inherited
	err := s.group.Read(read, c.want, buf, &s.stats)
	s.early = read
	switch {
	case errors.Is(err, cgroup.ErrVanished):
		s.gone = true
		return
	case err != nil:
		s.err = err
	}
	s.zero |= s.stats.Zero(read)
}

// inherited is the subtree files that s may serve as zero without reading
// them: those its nearest ancestor holds zero in (read or inherited this
// scrape) and that s had when last read, so that a cgroup seen for the
// first time reads them once.
func (c *cadvisorCollector) inherited(s *cgState) cgroup.FileSet {
	if s.parent == nil {
		return 0
	}
	return c.subtree & s.parent.zero & s.stats.Present
}
