package cadvisor

import (
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/nodeagent/nodeagent/cgroup"
	"github.com/nodeagent/nodeagent/internal/podmeta"
)

// identity is what labels a cgroup: the kubelet's values of container, id,
// image, name, namespace and pod (docs/architecture.md#container-labels).
type identity struct {
	sandbox                             bool
	container, id, image, name, ns, pod string
}

// labelSet holds one cgroup's label pairs, built once per identity and
// shared by every series of the cgroup (and by concurrent scrapes, which
// only read them). Each slice is sorted by label name.
type labelSet struct {
	base     []*dto.LabelPair // container, id, image, name, namespace, pod
	cpu      []*dto.LabelPair // + cpu="total"
	failures [2][2][]*dto.LabelPair
	io       map[uint64]*ioLabels // by major<<32 | minor
	net      map[string][]*dto.LabelPair
}

// ioLabels are the label sets of one block device of one cgroup.
type ioLabels struct {
	device string
	fs     []*dto.LabelPair    // + device
	blkio  [2][]*dto.LabelPair // + device, major, minor, operation Read/Write
}

// constPairs are label pairs whose values never change, shared by all
// cgroups.
type constPairs struct {
	cpuTotal    *dto.LabelPair
	failureType [2]*dto.LabelPair // pgfault, pgmajfault
	scope       [2]*dto.LabelPair // container, hierarchy
	operation   [2]*dto.LabelPair // Read, Write
}

func newConstPairs() constPairs {
	return constPairs{
		cpuTotal:    pair("cpu", "total"),
		failureType: [2]*dto.LabelPair{pair("failure_type", "pgfault"), pair("failure_type", "pgmajfault")},
		scope:       [2]*dto.LabelPair{pair("scope", "container"), pair("scope", "hierarchy")},
		operation:   [2]*dto.LabelPair{pair("operation", "Read"), pair("operation", "Write")},
	}
}

func pair(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

// withLabels merges sorted extra pairs into a sorted base into a new slice.
func withLabels(base []*dto.LabelPair, extra ...*dto.LabelPair) []*dto.LabelPair {
	out := make([]*dto.LabelPair, 0, len(base)+len(extra))
	i := 0
	for _, e := range extra {
		for i < len(base) && base[i].GetName() < e.GetName() {
			out = append(out, base[i])
			i++
		}
		out = append(out, e)
	}
	return append(out, base[i:]...)
}

func (c *cadvisorCollector) newLabelSet(id identity) *labelSet {
	base := make([]*dto.LabelPair, 0, 6)
	base = append(base, pair("container", id.container))
	if !c.dropID {
		base = append(base, pair("id", id.id))
	}
	base = append(base, pair("image", id.image))
	if !c.dropName {
		base = append(base, pair("name", id.name))
	}
	base = append(base, pair("namespace", id.ns), pair("pod", id.pod))
	ls := &labelSet{base: base, cpu: withLabels(base, c.pairs.cpuTotal)}
	for t := range 2 {
		for sc := range 2 {
			ls.failures[t][sc] = withLabels(base, c.pairs.failureType[t], c.pairs.scope[sc])
		}
	}
	return ls
}

// ioLabelsFor returns (and keeps) the label sets of device maj:min.
func (c *cadvisorCollector) ioLabelsFor(ls *labelSet, maj, min uint32, device string) *ioLabels {
	key := uint64(maj)<<32 | uint64(min)
	if l := ls.io[key]; l != nil && l.device == device {
		return l
	}
	if ls.io == nil {
		ls.io = map[uint64]*ioLabels{}
	}
	dev := pair("device", device)
	ma, mi := pair("major", strconv.FormatUint(uint64(maj), 10)), pair("minor", strconv.FormatUint(uint64(min), 10))
	l := &ioLabels{device: device, fs: withLabels(ls.base, dev)}
	for op := range 2 {
		l.blkio[op] = withLabels(ls.base, dev, ma, mi, c.pairs.operation[op])
	}
	ls.io[key] = l
	return l
}

// netLabelsFor returns (and keeps) the label set of one interface.
func netLabelsFor(ls *labelSet, iface string) []*dto.LabelPair {
	if l, ok := ls.net[iface]; ok {
		return l
	}
	if ls.net == nil {
		ls.net = map[string][]*dto.LabelPair{}
	}
	l := withLabels(ls.base, pair("interface", iface))
	ls.net[iface] = l
	return l
}

// identify labels every cgroup read in this scrape from its path and the
// pod metadata snapshot, and returns the cgroups to serve: those that did
// not vanish, less sandboxes when they are skipped, less cgroups that look
// like an earlier one once labels are dropped. unknown reports a pod UID or
// container ID that the snapshot lacks.
//
// A pod's sandbox (pause) leaf is not in /pods: it is the oldest of the
// pod's leaves that the snapshot does not name as a container (the runtime
// makes the sandbox before any container). Other unnamed leaves are
// containers /pods does not list yet; they are served with what the path
// tells until the next refresh.
func (c *cadvisorCollector) identify(scrape []*cgState, snap *podmeta.Snapshot) (served []*cgState, unknown bool) {
	sandboxes := map[string]*cgState{} // pod UID → its sandbox leaf
	for _, s := range scrape {
		e := &s.entry
		if s.gone || e.Kind != cgroup.KindContainer || e.PodUID == "" {
			continue
		}
		if snap != nil {
			if _, ok := snap.Containers[e.ContainerID]; ok {
				continue
			}
		}
		if old := sandboxes[e.PodUID]; old == nil || s.createdAt.Before(old.createdAt) ||
			(s.createdAt.Equal(old.createdAt) && e.Path < old.entry.Path) {
			sandboxes[e.PodUID] = s
		}
	}

	var seen map[string]bool
	if c.dropID || c.dropName {
		seen = map[string]bool{}
	}
	served = scrape[:0:0]
	for _, s := range scrape {
		if s.gone {
			continue
		}
		id, known := c.identityOf(&s.entry, snap, sandboxes[s.entry.PodUID] == s)
		if !known {
			unknown = true
		}
		if id.sandbox && c.skipSandbox {
			continue
		}
		if s.labels == nil || s.id != id {
			s.id, s.labels = id, c.newLabelSet(id)
		}
		if seen != nil {
			key := labelKey(s.labels.base)
			if seen[key] {
				c.logger.Debug("cgroup left out: its labels equal an earlier cgroup's once id/name are dropped", "cgroup", s.entry.Path)
				continue
			}
			seen[key] = true
		}
		served = append(served, s)
	}
	return served, unknown
}

// identityOf returns e's labels and whether the snapshot knew all it
// should.
func (c *cadvisorCollector) identityOf(e *cgroup.Entry, snap *podmeta.Snapshot, sandbox bool) (identity, bool) {
	id := identity{id: e.Path}
	if e.PodUID == "" {
		if e.Kind == cgroup.KindContainer {
			id.name = e.ContainerID
		}
		return id, true
	}
	known := true
	if snap != nil {
		if p, ok := snap.Pods[e.PodUID]; ok {
			id.ns, id.pod = p.Namespace, p.Name
		} else {
			known = false
		}
	} else {
		known = c.meta == nil
	}
	if e.Kind != cgroup.KindContainer {
		return id, known
	}
	id.name = e.ContainerID
	if snap != nil {
		if ct, ok := snap.Containers[e.ContainerID]; ok {
			id.container, id.image = ct.Name, ct.Image
			if p, ok := snap.Pods[ct.PodUID]; ok {
				id.ns, id.pod = p.Namespace, p.Name
			}
			return id, known
		}
	}
	if sandbox {
		id.sandbox, id.image = true, c.sandboxImage
		return id, known
	}
	return id, known && c.meta == nil
}

// labelKey joins label values; label values cannot hold "\xff" in valid
// UTF-8, so it separates them unambiguously.
func labelKey(pairs []*dto.LabelPair) string {
	var b strings.Builder
	for _, p := range pairs {
		b.WriteString(p.GetValue())
		b.WriteByte(0xff)
	}
	return b.String()
}
