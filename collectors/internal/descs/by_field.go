package descs

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ByField holds the Descs of families named after fields read from a
// file (node_vmstat_<field>, node_netstat_<Protocol>_<Counter>,
// node_sockstat_<PROTOCOL>_<field>): built on a field's first sight and
// kept, with nil for a field the collector's filter drops, so that names
// are built and filters matched once per field rather than every scrape.
// The kernel's set of fields does not change while it runs.
type ByField struct {
	mu sync.Mutex
	m  map[string]*prometheus.Desc
}

// Get returns key's Desc, calling build (which may return nil) on first sight.
func (f *ByField) Get(key string, build func() *prometheus.Desc) *prometheus.Desc {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.m[key]
	if !ok {
		if f.m == nil {
			f.m = map[string]*prometheus.Desc{}
		}
		d = build()
		f.m[key] = d
	}
	return d
}

// IsMetricNamePart says whether b can follow a metric name prefix: the
// kernel's counter names are [A-Za-z0-9_].
func IsMetricNamePart(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
