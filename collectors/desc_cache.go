package collectors

import (
	"github.com/prometheus/client_golang/prometheus"
)

// descCache holds the Descs of families whose names come from the kernel
// (bcachefs counters, ZFS kstats), so that they are built once per name
// rather than once per scrape. Names the kernel stops reporting stay cached;
// the set is as large as the kernel's, a few hundred at most.
type descCache struct {
	fieldDescs
}

// get returns the Desc for name, building it with help and labels the
// first time.
func (c *descCache) get(name, help string, labels []string) *prometheus.Desc {
	return c.fieldDescs.get(name+"\x00"+help, func() *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	})
}
