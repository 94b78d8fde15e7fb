package kubeletclient

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	corev1 "k8s.io/api/core/v1"

	"github.com/nodeagent/nodeagent/internal/podmeta"
)

// DecodePods turns the body of the kubelet's GET /pods (a v1.PodList) into
// pod metadata: pods by UID, containers (regular, init and ephemeral) by
// runtime container ID. Containers without an ID yet (still being created)
// are left out; they have no cgroup either.
func DecodePods(body []byte) (*podmeta.Snapshot, error) {
	var list corev1.PodList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decoding pod list: %w", err)
	}
	snap := &podmeta.Snapshot{
		Pods:       make(map[string]podmeta.Pod, len(list.Items)),
		Containers: map[string]podmeta.Container{},
	}
	for i := range list.Items {
		p := &list.Items[i]
		uid := string(p.UID)
		if uid == "" {
			continue
		}
		pod := podmeta.Pod{UID: uid, Namespace: p.Namespace, Name: p.Name}
		if p.Status.StartTime != nil {
			pod.StartTime = p.Status.StartTime.Time
		}
		snap.Pods[uid] = pod

		images := specImages(&p.Spec)
		for _, statuses := range [][]corev1.ContainerStatus{
			p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses,
		} {
			for _, s := range statuses {
				id := runtimeID(s.ContainerID)
				if id == "" {
					continue
				}
				c := podmeta.Container{ID: id, PodUID: uid, Name: s.Name, Image: images[s.Name]}
				switch {
				case s.State.Running != nil:
					c.StartTime = s.State.Running.StartedAt.Time
				case s.State.Terminated != nil:
					c.StartTime = s.State.Terminated.StartedAt.Time
				}
				snap.Containers[id] = c
			}
		}
	}
	return snap, nil
}

// specImages maps each container name of the spec to its image normalised
// the way containerd reports it, which is what the kubelet's cAdvisor image
// label shows. The status image can be a bare image ID (sha256:…), so it is
// not used.
func specImages(spec *corev1.PodSpec) map[string]string {
	out := make(map[string]string, len(spec.Containers)+len(spec.InitContainers))
	for _, c := range spec.InitContainers {
		out[c.Name] = NormalizeImage(c.Image)
	}
	for _, c := range spec.Containers {
		out[c.Name] = NormalizeImage(c.Image)
	}
	for _, c := range spec.EphemeralContainers {
		out[c.Name] = NormalizeImage(c.Image)
	}
	return out
}

// NormalizeImage returns the runtime's form of an image reference:
// "alpine" → "docker.io/library/alpine:latest"; a reference with both a tag
// and a digest keeps only the digest ("repo:tag@sha256:…" → "repo@sha256:…").
// A reference that does not parse is returned unchanged.
func NormalizeImage(image string) string {
	named, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	if d, ok := named.(reference.Digested); ok {
		if withDigest, err := reference.WithDigest(reference.TrimNamed(named), d.Digest()); err == nil {
			return withDigest.String()
		}
	}
	return reference.TagNameOnly(named).String()
}

// runtimeID strips the runtime scheme from a status containerID
// ("containerd://<id>", "cri-o://<id>", "docker://<id>").
func runtimeID(containerID string) string {
	if _, id, ok := strings.Cut(containerID, "://"); ok {
		return id
	}
	return containerID
}
