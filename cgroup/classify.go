package cgroup

import "strings"

// Kind is what a cgroup is, as far as its path tells.
type Kind uint8

// The kinds of cgroup Walk tells apart.
const (
	// KindRoot is the hierarchy's root.
	KindRoot Kind = iota
	// KindHost is a cgroup outside the kubepods tree: a slice, a service
	// (system.slice/<unit>.service), init.scope, user.slice/....
	KindHost
	// KindKubepods is the kubelet's pods root: kubepods (cgroupfs driver)
	// or kubepods.slice (systemd driver; <root>-kubepods.slice under a
	// custom --cgroup-root).
	KindKubepods
	// KindQoS is a QoS-class cgroup under kubepods: burstable or besteffort.
	// Guaranteed pods have none; they sit directly under kubepods.
	KindQoS
	// KindPod is a pod's cgroup; Entry.PodUID names the pod.
	KindPod
	// KindContainer is a container runtime's leaf: one of the pod's
	// containers or its sandbox (pause), which only pod metadata tells
	// apart. Entry.ContainerID is the runtime's container ID. Walk does not
	// descend below containers.
	KindContainer
	// KindOther is a directory inside the kubepods tree that none of the
	// layouts above explains.
	KindOther
)

var kindNames = [...]string{"root", "host", "kubepods", "qos", "pod", "container", "other"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// The container runtimes Entry.Runtime names, as the systemd driver's scope
// names tell; the cgroupfs driver names containerd's and Docker's leaves by
// the bare ID, so Runtime stays empty there.
const (
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimeDocker     = "docker"
)

// Entry is one cgroup found by Walk.
type Entry struct {
	// Path is the cgroup's path from the root: "/" for the root,
	// "/kubepods.slice/kubepods-besteffort.slice/..." below it. It is the
	// kubelet's id label.
	Path string
	// Ino is the directory's inode number; a cgroup removed and created
	// again under the same path gets a new one.
	Ino  uint64
	Kind Kind
	// QoS is "burstable" or "besteffort" for QoS cgroups and what lies
	// below them, "guaranteed" for pods directly under kubepods.
	QoS string
	// PodUID is the pod's UID (dashes restored from the systemd driver's
	// underscores) for pods and everything below them.
	PodUID string
	// ContainerID is the runtime's container ID for KindContainer.
	ContainerID string
	Runtime     string
}

// action says what Walk does with a classified directory.
type action uint8

const (
	serveAndDescend action = iota
	serveOnly
	skip
)

// classify names the child directory name of parent.
func classify(parent *Entry, name string) (Entry, action) {
	e := Entry{Path: joinPath(parent.Path, name), QoS: parent.QoS, PodUID: parent.PodUID}
	switch parent.Kind {
	case KindRoot, KindHost:
		if isKubepods(name) {
			e.Kind, e.QoS, e.PodUID = KindKubepods, "", ""
			return e, serveAndDescend
		}
		if id, rt, ok := containerLeaf(name); ok {
			e.Kind, e.ContainerID, e.Runtime = KindContainer, id, rt
			return e, serveOnly
		}
		e.Kind = KindHost
		return e, serveAndDescend
	case KindKubepods:
		if qos := qosClass(name); qos != "" {
			e.Kind, e.QoS = KindQoS, qos
			return e, serveAndDescend
		}
		if uid, ok := podUID(name); ok {
			e.Kind, e.QoS, e.PodUID = KindPod, "guaranteed", uid
			return e, serveAndDescend
		}
	case KindQoS:
		if uid, ok := podUID(name); ok {
			e.Kind, e.PodUID = KindPod, uid
			return e, serveAndDescend
		}
	case KindPod:
		if isConmon(name) {
			return e, skip
		}
		if id, rt, ok := containerLeaf(name); ok {
			e.Kind, e.ContainerID, e.Runtime = KindContainer, id, rt
			return e, serveOnly
		}
	case KindContainer:
		return e, skip
	}
	e.Kind = KindOther
	return e, serveAndDescend
}

func joinPath(parent, name string) string {
	if parent == "/" {
		return "/" + name
	}
	return parent + "/" + name
}

func isKubepods(name string) bool {
	return name == "kubepods" || name == "kubepods.slice" || strings.HasSuffix(name, "-kubepods.slice")
}

// qosClass recognises burstable and besteffort (cgroupfs) and
// [<root>-]kubepods-burstable.slice, [<root>-]kubepods-besteffort.slice
// (systemd).
func qosClass(name string) string {
	for _, qos := range []string{"burstable", "besteffort"} {
		if name == qos || name == "kubepods-"+qos+".slice" || strings.HasSuffix(name, "-kubepods-"+qos+".slice") {
			return qos
		}
	}
	return ""
}

// podUID recognises pod<UID> (cgroupfs) and
// [<root>-]kubepods[-<qos>]-pod<UID_>.slice (systemd, dashes of the UID
// turned to underscores) and returns the UID with its dashes.
func podUID(name string) (string, bool) {
	if s, ok := strings.CutSuffix(name, ".slice"); ok {
		i := strings.LastIndex(s, "-pod")
		if i < 0 {
			return "", false
		}
		prefix := s[:i]
		if !(prefix == "kubepods" || strings.HasSuffix(prefix, "-kubepods") ||
			strings.HasSuffix(prefix, "kubepods-burstable") || strings.HasSuffix(prefix, "kubepods-besteffort")) {
			return "", false
		}
		return validUID(strings.ReplaceAll(s[i+len("-pod"):], "_", "-"))
	}
	if s, ok := strings.CutPrefix(name, "pod"); ok {
		return validUID(s)
	}
	return "", false
}

// validUID accepts a dashed UUID or a static pod's config hash: hex digits
// and dashes, at most 64 of them.
func validUID(s string) (string, bool) {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isHex(c) && c != '-' {
			return "", false
		}
	}
	return s, true
}

// containerLeaf recognises a runtime's container cgroup: systemd driver
// cri-containerd-<ID>.scope, crio-<ID>.scope, docker-<ID>.scope; cgroupfs
// driver <ID> (containerd, Docker) and crio-<ID> (CRI-O).
func containerLeaf(name string) (id, runtime string, ok bool) {
	if s, ok := strings.CutSuffix(name, ".scope"); ok {
		for _, p := range []struct{ prefix, runtime string }{
			{"cri-containerd-", RuntimeContainerd},
			{"crio-", RuntimeCRIO},
			{"docker-", RuntimeDocker},
		} {
			if id, ok := strings.CutPrefix(s, p.prefix); ok && isContainerID(id) {
				return id, p.runtime, true
			}
		}
		return "", "", false
	}
	if id, ok := strings.CutPrefix(name, "crio-"); ok && isContainerID(id) {
		return id, RuntimeCRIO, true
	}
	if isContainerID(name) {
		return name, "", true
	}
	return "", "", false
}

// isConmon recognises CRI-O's conmon monitor cgroups, which are not
// containers: crio-conmon-<ID>.scope (systemd) and crio-conmon-<ID>.
func isConmon(name string) bool {
	id, ok := strings.CutPrefix(strings.TrimSuffix(name, ".scope"), "crio-conmon-")
	return ok && isContainerID(id)
}

// isContainerID accepts the 64 lowercase hex digits that containerd,
// CRI-O and Docker use.
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
