package descs

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ByName holds the Descs of families whose names come from the kernel
// (bcachefs counters), so that they are built once per name
// rather than once per scrape. Names the kernel stops reporting stay cached;
// the set is as large as the kernel's, a few hundred at most.
type ByName struct {
	ByField
}

// Get returns the Desc for name, building it with help and labels the
// first time.
func (c *ByName) Get(name, help string, labels []string) *prometheus.Desc {
	return c.ByField.Get(name+"\x00"+help, func() *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	})
}
