package kubeletclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/distribution/reference"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protodelim"

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

// DecodeMetrics parses a kubelet metrics body in the format its Content-Type
// names (delimited protobuf, text or OpenMetrics) into families that are
// served unchanged: names, help, types, labels and values as they came,
// families sorted by name, explicit timestamps removed (docs/architecture.md#paths-and-jobs).
//
// A body that is not a metrics exposition (an HTML error page, garbage) is an
// error wrapping ErrBadBody. A family or series that appears twice, which no
// exposition may contain, is dropped and reported in an error next to the
// remaining families, which are still good to serve.
func DecodeMetrics(body []byte, contentType string) ([]*dto.MetricFamily, error) {
	format := expfmt.ResponseFormat(http.Header{"Content-Type": []string{contentType}})
	switch format.FormatType() {
	case expfmt.TypeProtoDelim, expfmt.TypeTextPlain, expfmt.TypeOpenMetrics:
	default:
		return nil, fmt.Errorf("%w: Content-Type %q is not a Prometheus exposition format (the body starts %q)", ErrBadBody, contentType, start(body))
	}
	var dec expfmt.Decoder
	if format.FormatType() == expfmt.TypeProtoDelim {
		dec = newProtoDecoder(body, format)
	} else {
		dec = expfmt.NewDecoder(bytes.NewReader(body), format)
	}
	var mfs []*dto.MetricFamily
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("%w: parsing %s: %w (the body starts %q)", ErrBadBody, contentType, err, start(body))
		}
		mfs = append(mfs, mf)
	}
	slices.SortStableFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return dropDuplicates(mfs)
}

// protoDecoder reads delimited protobuf families. expfmt's own decoder
// reads a message of whatever length its prefix claims (MaxSize -1): seven
// bytes of garbage ask for terabytes and the agent dies of out-of-memory
// (found by FuzzDecodeMetrics). Here no message may be longer than the body.
type protoDecoder struct {
	r      *bytes.Reader
	opts   protodelim.UnmarshalOptions
	scheme model.ValidationScheme
}

func newProtoDecoder(body []byte, format expfmt.Format) *protoDecoder {
	scheme := model.LegacyValidation
	if format.ToEscapingScheme() == model.NoEscaping {
		scheme = model.UTF8Validation
	}
	return &protoDecoder{r: bytes.NewReader(body), opts: protodelim.UnmarshalOptions{MaxSize: int64(len(body))}, scheme: scheme}
}

// Decode reads the next family and checks its names as expfmt does.
func (d *protoDecoder) Decode(mf *dto.MetricFamily) error {
	if err := d.opts.UnmarshalFrom(d.r, mf); err != nil {
		return err
	}
	if !d.scheme.IsValidMetricName(mf.GetName()) {
		return fmt.Errorf("invalid metric name %q", mf.GetName())
	}
	for _, m := range mf.GetMetric() {
		for _, lp := range m.GetLabel() {
			if !d.scheme.IsValidLabelName(lp.GetName()) {
				return fmt.Errorf("invalid label name %q in %s", lp.GetName(), mf.GetName())
			}
			if !model.LabelValue(lp.GetValue()).IsValid() {
				return fmt.Errorf("label value %q of %s is not UTF-8", lp.GetValue(), mf.GetName())
			}
		}
	}
	return nil
}

// dropDuplicates removes repeated families and repeated series (same label
// set) and strips timestamps, in one pass.
func dropDuplicates(mfs []*dto.MetricFamily) ([]*dto.MetricFamily, error) {
	var errs []error
	out := mfs[:0]
	seen := map[uint64]struct{}{}
	var h xxhash.Digest
	for i, mf := range mfs {
		if i > 0 && mf.GetName() == mfs[i-1].GetName() {
			errs = append(errs, fmt.Errorf("family %s appears twice; the second was dropped", mf.GetName()))
			continue
		}
		clear(seen)
		ms := mf.Metric[:0]
		dups := 0
		for _, m := range mf.Metric {
			m.TimestampMs = nil
			h.Reset()
			for _, lp := range m.Label {
				_, _ = h.WriteString(lp.GetName())
				_, _ = h.Write([]byte{0xff})
				_, _ = h.WriteString(lp.GetValue())
				_, _ = h.Write([]byte{0xfe})
			}
			sum := h.Sum64()
			if _, dup := seen[sum]; dup {
				dups++
				continue
			}
			seen[sum] = struct{}{}
			ms = append(ms, m)
		}
		mf.Metric = ms
		if dups > 0 {
			errs = append(errs, fmt.Errorf("family %s has %d repeated series; dropped", mf.GetName(), dups))
		}
		out = append(out, mf)
	}
	if len(errs) > 0 {
		return out, fmt.Errorf("%w: %w", ErrBadBody, errors.Join(errs...))
	}
	return out, nil
}

// start is the beginning of a body, for error messages.
func start(body []byte) string {
	const n = 64
	if len(body) > n {
		return string(body[:n]) + "…"
	}
	return string(body)
}
