// Package podmeta holds the pod metadata that the container collectors
// consume and the kubelet client produces: which pod a cgroup belongs to and
// which container a runtime container ID is. It is shared by collectors/
// (consumer) and kubeletclient/ (producer), which must not import each other
// in that direction.
package podmeta

import "time"

// Pod is one pod as the kubelet's /pods reports it.
type Pod struct {
	// UID is metadata.uid exactly as the kubelet has it: a dashed UUID for
	// API pods, the 32-hex config hash for static pods.
	UID       string
	Namespace string
	Name      string
	// StartTime is status.startTime; zero when the kubelet has not set it.
	StartTime time.Time
}

// Container is one container (regular, init or ephemeral) of a pod.
type Container struct {
	// ID is the runtime container ID with its scheme (containerd://,
	// cri-o://, docker://) stripped: the ID that names its cgroup.
	ID     string
	PodUID string
	Name   string
	// Image is the spec image normalised the way the runtime reports it
	// (docker.io/library/alpine:latest), which is what the kubelet's
	// /metrics/cadvisor puts in its image label.
	Image string
	// StartTime is state.running.startedAt (or terminated.startedAt); zero
	// when unknown.
	StartTime time.Time
}

// Snapshot is one consistent view of the node's pods. It is never modified
// after it is published, so readers may keep it for a whole scrape.
type Snapshot struct {
	Pods       map[string]Pod       // by UID
	Containers map[string]Container // by runtime container ID
}

// Source provides pod metadata.
type Source interface {
	// Snapshot returns the newest view; nil before the first one arrived.
	// It never blocks on the network.
	Snapshot() *Snapshot
	// Unknown tells the source that a cgroup names a pod UID or container ID
	// the current snapshot lacks; the source refreshes soon, rate-limited, so
	// callers may call it on every miss.
	Unknown()
}
