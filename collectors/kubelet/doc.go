// Package kubelet holds the kubelet layer: passthrough collectors that serve
// the kubelet's own metrics paths (/metrics, /metrics/probes,
// /metrics/resource) on their own nodeagent paths, and the security
// collector that checks the node's kubelet (read-only port closed,
// anonymous authentication off). They use the collectors.Kubelet that
// cmd/nodeagent builds; without a kubelet address their factories build
// nothing.
package kubelet
