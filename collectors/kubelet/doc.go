// Package kubelet holds the kubelet layer: passthrough collectors that serve
// the metrics endpoints of the node's Kubernetes components on their own
// nodeagent paths — the kubelet's /metrics, /metrics/probes, /metrics/slis
// and /metrics/resource, kube-proxy's, and the container runtime's
// (containerd or CRI-O) — and the security collector that checks the
// node's kubelet (read-only port closed, anonymous authentication off).
// The kubelet's collectors use the collectors.Kubelet that cmd/nodeagent
// builds, and build nothing without a kubelet address; kube-proxy's and the
// runtime's fetch their endpoints with internal/promfetch.
package kubelet
