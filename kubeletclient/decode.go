package kubeletclient

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/distribution/reference"

	"github.com/nodeagent/nodeagent/internal/podmeta"
)

// podList holds the fields of the kubelet's v1.PodList that nodeagent
// uses. Decoding into it rather than k8s.io/api's PodList keeps the API
// types out of the binary (several MiB of resident text) and decodes a
// real-size /pods several times faster; the field names are the API's.
type podList struct {
	Items []struct {
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
			UID       string `json:"uid"`
		} `json:"metadata"`
		Spec   podSpec `json:"spec"`
		Status struct {
			StartTime                  *time.Time        `json:"startTime"`
			InitContainerStatuses      []containerStatus `json:"initContainerStatuses"`
			ContainerStatuses          []containerStatus `json:"containerStatuses"`
			EphemeralContainerStatuses []containerStatus `json:"ephemeralContainerStatuses"`
		} `json:"status"`
	} `json:"items"`
}

type podSpec struct {
	InitContainers      []specContainer `json:"initContainers"`
	Containers          []specContainer `json:"containers"`
	EphemeralContainers []specContainer `json:"ephemeralContainers"`
}

type specContainer struct {
	Name  string `json:"name"`
	Image string `json:"image"`
}

type containerStatus struct {
	Name        string `json:"name"`
	ContainerID string `json:"containerID"`
	State       struct {
		Running *struct {
			StartedAt time.Time `json:"startedAt"`
		} `json:"running"`
		Terminated *struct {
			StartedAt time.Time `json:"startedAt"`
		} `json:"terminated"`
	} `json:"state"`
}

// DecodePods turns the body of the kubelet's GET /pods (a v1.PodList) into
// pod metadata: pods by UID, containers (regular, init and ephemeral) by
// runtime container ID. Containers without an ID yet (still being created)
// are left out; they have no cgroup either.
func DecodePods(body []byte) (*podmeta.Snapshot, error) {
	var list podList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decoding pod list: %w", err)
	}
	snap := &podmeta.Snapshot{
		Pods:       make(map[string]podmeta.Pod, len(list.Items)),
		Containers: map[string]podmeta.Container{},
	}
	for i := range list.Items {
		p := &list.Items[i]
		uid := p.Metadata.UID
		if uid == "" {
			continue
		}
		pod := podmeta.Pod{UID: uid, Namespace: p.Metadata.Namespace, Name: p.Metadata.Name}
		if p.Status.StartTime != nil {
			pod.StartTime = *p.Status.StartTime
		}
		snap.Pods[uid] = pod

		images := specImages(&p.Spec)
		for _, statuses := range [][]containerStatus{
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
					c.StartTime = s.State.Running.StartedAt
				case s.State.Terminated != nil:
					c.StartTime = s.State.Terminated.StartedAt
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
func specImages(spec *podSpec) map[string]string {
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
