package collectors

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// descCache holds the Descs of families whose names come from the kernel
// (bcachefs counters, ZFS kstats), so that they are built once per name
// rather than once per scrape. Names the kernel stops reporting stay cached;
// the set is as large as the kernel's, a few hundred at most.
type descCache struct {
	mu    sync.Mutex
	descs map[string]*prometheus.Desc
}

// get returns the Desc for name, building it with help and labels the
// first time.
func (c *descCache) get(name, help string, labels []string) *prometheus.Desc {
	c.mu.Lock()
	defer c.mu.Unlock()
	key := name + "\x00" + help
	d, ok := c.descs[key]
	if !ok {
		if c.descs == nil {
			c.descs = map[string]*prometheus.Desc{}
		}
		d = prometheus.NewDesc(name, help, labels, nil)
		c.descs[key] = d
	}
	return d
}
