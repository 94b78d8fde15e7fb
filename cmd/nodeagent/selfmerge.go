package main

import (
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

// withOwn merges the agent's own families (others: its registry and the
// passthroughs' outcomes) into a collection, as a prometheus.Gatherers
// over the collection's client_model form and others merges them, but
// leaves the compact families compact for the text writer. /metrics (one
// path for everything, the bare-metal job's) used to convert every compact
// family to client_model and check it again: ~1.5–2 ms a scrape, a third
// of a host scrape's CPU. A compact family keeps its series in the
// collector's order, as on the collector's own path (the Gatherers sorted
// them by label values; the host collectors' compact families are sorted
// so already). A compact family that shares its name with one of others'
// is merged as before: converted, and checked by the Gatherers.
func withOwn(res collectors.Result, gatherErr error, others prometheus.Gatherers) (collectors.Result, error) {
	own, ownErr := others.Gather()
	collide := func(c *exposition.CompactFamily) bool {
		_, found := slices.BinarySearchFunc(own, c.Name, func(mf *dto.MetricFamily, name string) int {
			return strings.Compare(mf.GetName(), name)
		})
		return found
	}
	families := res.Families
	compact := res.Compact
	if slices.ContainsFunc(compact, collide) {
		families = slices.Clone(res.Families)
		compact = nil
		for _, c := range res.Compact {
			if collide(c) {
				families = append(families, c.MetricFamily())
			} else {
				compact = append(compact, c)
			}
		}
	}
	all := prometheus.Gatherers{
		prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return families, gatherErr }),
		prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return own, ownErr }),
	}
	mfs, err := all.Gather()
	return collectors.Result{Families: mfs, Compact: compact, Errors: res.Errors}, err
}
