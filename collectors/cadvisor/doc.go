// Package cadvisor holds the container layer: container_* families read
// straight from cgroup v2 through package cgroup, and machine_* families,
// with the names, types, help and labels of the kubelet's
// /metrics/cadvisor, so that kubernetes-mixin's rules and dashboards work
// unchanged (docs/container-metrics.md). Pod and container names come from
// the kubelet's /pods through podmeta.Source.
//
// The cadvisor collector is a collectors.FamilyCollector: at thousands of
// containers it builds client_model families directly rather than one
// prometheus.Metric per series.
package cadvisor
