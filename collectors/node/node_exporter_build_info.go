package node

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"

	"github.com/nodeagent/nodeagent/collectors"
)

func init() {
	collectors.Register(collectors.Registration{
		Name:           "node_exporter_build_info",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(collectors.FlagApp) collectors.Factory {
			return func(collectors.Env) (collectors.Collector, error) { return newNodeExporterBuildInfo(), nil }
		},
	})
}

// nodeExporterBuildInfo serves node_exporter_build_info, node_exporter's
// family about itself, with nodeagent's version, revision, branch and Go
// version (prometheus/common/version, as nodeagent_build_info). The stock
// node-mixin dashboard "Node Exporter / USE Method / Node" lists its
// instances with label_values(node_exporter_build_info{job="node-exporter"},
// instance): without the family it has no node to pick.
type nodeExporterBuildInfo struct {
	info prometheus.Collector
}

func newNodeExporterBuildInfo() *nodeExporterBuildInfo {
	// client_golang's version collector is what node_exporter registers:
	// the same name, help, type and labels.
	return &nodeExporterBuildInfo{info: versioncollector.NewCollector("node_exporter")}
}

func (c *nodeExporterBuildInfo) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	c.info.Collect(ch)
	return nil
}
