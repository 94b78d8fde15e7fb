// Package collectortest is what the collector packages' tests share: Envs
// over fixture trees and the real host, building a collector through its
// registration and flags as the binary does, its exposition, golden files
// and their -update flag, and the node_exporter conformance runner.
//
// testdata/host is one realistic Kubernetes node (testdata/host/README.md)
// that many golden cases of the host collectors link to, and that the
// end-to-end and benchmark tests of cmd/nodeagent serve.
//
// Only tests import it.
package collectortest
