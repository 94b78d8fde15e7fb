package cadvisor

import (
	"strconv"
	"strings"

	"github.com/nodeagent/nodeagent/cgroup"
	"github.com/nodeagent/nodeagent/internal/exposition"
	"github.com/nodeagent/nodeagent/internal/podmeta"
)

// identity is what labels a cgroup: the kubelet's values of container, id,
// image, name, namespace and pod (docs/architecture.md#container-labels).
type identity struct {
	sandbox                             bool
	container, id, image, name, ns, pod string
}

// labelSet holds one cgroup's label sets, built once per identity and
// shared by every series of the cgroup (and by concurrent scrapes, which
// only read them).
type labelSet struct {
	base     *exposition.LabelSet // container, id, image, name, namespace, pod
	cpu      *exposition.LabelSet // + cpu="total"
	failures [2][2]*exposition.LabelSet
	io       map[uint64]*ioLabels // by major<<32 | minor
	net      map[string]*exposition.LabelSet
}

// ioLabels are the label sets of one block device of one cgroup.
type ioLabels struct {
	device string
	fs     *exposition.LabelSet    // + device
	blkio  [2]*exposition.LabelSet // + device, major, minor, operation Read/Write
}

// labelShapes are the names of the container layer's kinds of label set,
// which depend on the labels dropped: a cgroup's base labels, and those
// with more labels, whose sets hold only their own values.
type labelShapes struct {
	base                          *exposition.LabelNames // container, id, image, name, namespace, pod
	cpu, failures, fs, blkio, net *exposition.LabelNames
	// The values of the extra labels that never change, kept so that
	// each set refers to them instead of holding copies.
	cpuTotal []string
	failure  [2][2][]string // by failure type and scope
}

func newLabelShapes(dropID, dropName bool) labelShapes {
	base := []string{"container"}
	if !dropID {
		base = append(base, "id")
	}
	base = append(base, "image")
	if !dropName {
		base = append(base, "name")
	}
	base = append(base, "namespace", "pod")
	names := exposition.NewLabelNames(base...)
	sh := labelShapes{
		base:     names,
		cpu:      names.Extend("cpu"),
		failures: names.Extend("failure_type", "scope"),
		fs:       names.Extend("device"),
		blkio:    names.Extend("device", "major", "minor", "operation"),
		net:      names.Extend("interface"),
		cpuTotal: []string{"total"},
	}
	for t, typ := range []string{"pgfault", "pgmajfault"} {
		for sc, scope := range []string{"container", "hierarchy"} {
			sh.failure[t][sc] = []string{typ, scope}
		}
	}
	return sh
}

// operations are the values of container_blkio_device_usage_total's
// operation label.
var operations = [2]string{"Read", "Write"}

// value is the identity's value of a base label.
func (id *identity) value(label string) string {
	switch label {
	case "container":
		return id.container
	case "id":
		return id.id
	case "image":
		return id.image
	case "name":
		return id.name
	case "namespace":
		return id.ns
	case "pod":
		return id.pod
	}
	return ""
}

func (c *cadvisorCollector) newLabelSet(id identity) *labelSet {
	values := make([]string, c.shapes.base.Len())
	for i := range values {
		values[i] = id.value(c.shapes.base.Name(i))
	}
	base := c.shapes.base.Set(values...)
	ls := &labelSet{base: base, cpu: c.shapes.cpu.Derive(base, c.shapes.cpuTotal...)}
	for t := range 2 {
		for sc := range 2 {
			ls.failures[t][sc] = c.shapes.failures.Derive(base, c.shapes.failure[t][sc]...)
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
	ma, mi := strconv.FormatUint(uint64(maj), 10), strconv.FormatUint(uint64(min), 10)
	l := &ioLabels{device: device, fs: c.shapes.fs.Derive(ls.base, device)}
	for op := range 2 {
		l.blkio[op] = c.shapes.blkio.Derive(ls.base, device, ma, mi, operations[op])
	}
	ls.io[key] = l
	return l
}

// netLabelsFor returns (and keeps) the label set of one interface.
func (c *cadvisorCollector) netLabelsFor(ls *labelSet, iface string) *exposition.LabelSet {
	if l, ok := ls.net[iface]; ok {
		return l
	}
	if ls.net == nil {
		ls.net = map[string]*exposition.LabelSet{}
	}
	l := c.shapes.net.Derive(ls.base, iface)
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
func labelKey(ls *exposition.LabelSet) string {
	var b strings.Builder
	for i := range ls.Len() {
		b.WriteString(ls.Value(i))
		b.WriteByte(0xff)
	}
	return b.String()
}
