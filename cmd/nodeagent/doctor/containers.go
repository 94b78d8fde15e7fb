package doctor

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/cgroup"
	"github.com/nodeagent/nodeagent/internal/podmeta"
	"github.com/nodeagent/nodeagent/kubeletclient"
)

// Container checks: the cgroup layout under --path.cgroupfs, the pod and
// container cgroups the agent finds there, and whether they are the pods
// of the kubelet's /pods.

// cgroupLayout is what --path.cgroupfs is, as the container layer sees it.
type cgroupLayout struct {
	fs cgroup.FS
	v2 bool
	// err says why there is no cgroup v2 hierarchy to read.
	err error
	// hybrid: cgroup v1 controllers beside the v2 hierarchy, which
	// cgroup.FS then reads with memory from v1.
	hybrid   bool
	nsRoot   bool   // a cgroup namespace's root, not the host's
	missing  string // controllers the layer reads from neither hierarchy
	controls string
}

func (d *doctor) readCgroupLayout(context.Context) (cgroupLayout, error) {
	root := d.opts.CgroupFS
	fs, err := cgroup.NewFS(root)
	if err != nil {
		return cgroupLayout{err: err}, nil
	}
	abs, _ := filepath.Abs(root)
	l := cgroupLayout{fs: fs, v2: true, hybrid: fs.MemoryV1() != "" || fs.V1("cpu") != "" || fs.V1("pids") != "" || fs.Root() != abs}
	// The root of a real cgroup2 mount is the kernfs root, inode 1; a
	// cgroup namespace's mount (a container's own /sys/fs/cgroup) has the
	// container's cgroup as its root. Fixture trees are not cgroup2.
	var sfs unix.Statfs_t
	var st unix.Stat_t
	if unix.Statfs(fs.Root(), &sfs) == nil && sfs.Type == unix.CGROUP2_SUPER_MAGIC && unix.Stat(fs.Root(), &st) == nil && st.Ino != 1 {
		l.nsRoot = true
	}
	if ctl, err := readTrim(filepath.Join(fs.Root(), "cgroup.controllers")); err == nil {
		have := strings.Fields(ctl)
		l.controls = strings.Join(have, " ")
		var missing []string
		for _, c := range []string{"memory", "io", "pids"} { // cpu.stat usage is there without the cpu controller
			if !slices.Contains(have, c) && fs.V1(c) == "" {
				missing = append(missing, c)
			}
		}
		l.missing = strings.Join(missing, ", ")
	}
	return l, nil
}

// checkCgroup: cgroup v2 unified (ok), hybrid (warn: the container layer
// reads the v2 hierarchy, memory from v1, and what only v1 has is
// absent), v1 only (fail: no container layer).
func checkCgroup(ctx context.Context, d *doctor) outcome {
	l, err := d.cgroups.get(ctx)
	if err != nil {
		return fail(err.Error(), "")
	}
	root := d.opts.CgroupFS
	switch {
	case !l.v2 && errors.Is(l.err, cgroup.ErrNotCgroup2):
		return fail(fmt.Sprintf("no cgroup v2 at %s, so no container_* series: %v", root, l.err),
			"boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1), or give --path.cgroupfs the host's cgroup v2 mount")
	case !l.v2:
		return fail(fmt.Sprintf("--path.cgroupfs: %v", l.err), "give --path.cgroupfs the host's cgroup v2 mount (in the DaemonSet /host/sys/fs/cgroup)")
	case l.nsRoot:
		return fail(fmt.Sprintf("%s is a cgroup namespace's view (a container's own cgroup), not the host's cgroup root: the pods' cgroups are not below it", root),
			"mount the host's /sys (hostPath /sys at /host/sys) and give --path.cgroupfs=/host/sys/fs/cgroup")
	case l.hybrid:
		var fromV1 []string
		for _, c := range []string{"memory", "cpu", "pids"} {
			if h := l.fs.V1(c); h != "" {
				fromV1 = append(fromV1, fmt.Sprintf("%s from the v1 hierarchy at %s", c, h))
			}
		}
		if l.fs.MemoryV1() == "" {
			fromV1 = append(fromV1, "no memory controller in either")
		}
		var absent []string
		if l.missing != "" {
			absent = append(absent, "the families of "+l.missing)
		}
		if l.fs.MemoryV1() == "" {
			absent = append(absent, "swap")
		}
		absent = append(absent, "OOM events")
		return warn(fmt.Sprintf("hybrid cgroup v1/v2 host: the container layer walks the cgroup v2 hierarchy at %s, with %s; %s are absent", l.fs.Root(), strings.Join(fromV1, ", "), joinAnd(absent)),
			"boot with systemd.unified_cgroup_hierarchy=1 (cgroup v2 only) for every container family")
	case l.missing != "":
		return warn(fmt.Sprintf("cgroup v2 at %s, but its root lacks the %s controllers (it has: %s): their container_* series are missing", root, l.missing, l.controls),
			"enable the controllers in the root's cgroup.subtree_control, or boot with systemd.unified_cgroup_hierarchy=1")
	}
	return okf("cgroup v2 (unified) at %s, controllers: %s", root, l.controls)
}

// walkResult is the cgroup tree as the container layer sees it.
type walkResult struct {
	entries  []cgroup.Entry
	err      error // the walk's joined errors; entries are still usable
	kubepods string
	driver   string
	runtimes []string
	pods     int
	leaves   int // container leaves under pods, sandboxes included
	others   []string
	host     int
}

// errNoV2 says the cgroup tree was not walked: no cgroup v2 there.
var errNoV2 = errors.New("no cgroup v2 hierarchy")

func (d *doctor) walkCgroups(ctx context.Context) (walkResult, error) {
	l, err := d.cgroups.get(ctx)
	if err != nil {
		return walkResult{}, err
	}
	if !l.v2 {
		return walkResult{}, errNoV2
	}
	// On a hybrid host the walk is of the unified hierarchy.
	entries, werr := l.fs.NewWalker().Walk()
	w := walkResult{entries: slices.Clone(entries), err: werr}
	runtimes := map[string]bool{}
	for _, e := range w.entries {
		switch e.Kind {
		case cgroup.KindKubepods:
			if w.kubepods == "" {
				w.kubepods = e.Path
			}
		case cgroup.KindPod:
			w.pods++
		case cgroup.KindContainer:
			if e.PodUID != "" {
				w.leaves++
				rt := e.Runtime
				if rt == "" {
					rt = "containerd or Docker"
				}
				runtimes[rt] = true
			}
		case cgroup.KindOther:
			w.others = append(w.others, e.Path)
		case cgroup.KindHost:
			w.host++
		}
	}
	switch {
	case strings.HasSuffix(w.kubepods, ".slice"):
		w.driver = "systemd"
	case w.kubepods != "":
		w.driver = "cgroupfs"
	}
	w.runtimes = slices.Sorted(maps.Keys(runtimes))
	return w, nil
}

// kubeletKnown says whether the agent would talk to a kubelet: then this
// host is a Kubernetes node and should have pod cgroups.
func (d *doctor) kubeletKnown(ctx context.Context) bool {
	_, err := d.kubelet.get(ctx)
	return !errors.Is(err, kubeletclient.ErrNoKubelet)
}

// checkContainerCgroups: the cgroup driver and runtime, and how many pod
// and container cgroups the container layer finds.
func checkContainerCgroups(ctx context.Context, d *doctor) outcome {
	w, err := d.walk.get(ctx)
	if errors.Is(err, errNoV2) {
		return skipf("the container layer is off: no cgroup v2 at %s (see host.cgroup)", d.opts.CgroupFS)
	}
	if err != nil {
		return fail(err.Error(), "")
	}
	root := d.opts.CgroupFS
	if w.kubepods == "" {
		if d.kubeletKnown(ctx) {
			return fail(fmt.Sprintf("no kubepods cgroup under %s (%d cgroups): the kubelet's pods are not in this hierarchy", root, len(w.entries)),
				"give --path.cgroupfs the host's cgroup v2 root (in the DaemonSet /host/sys/fs/cgroup); a kubelet with its own cgroupRoot keeps pods below it, which is found when it is in this hierarchy")
		}
		return okf("no kubepods cgroup under %s: no Kubernetes pods on this host; host cgroups (services, slices), served with their id label: %d", root, w.host)
	}
	rt := "no container leaves"
	if len(w.runtimes) > 0 {
		rt = "runtime " + strings.Join(w.runtimes, ", ")
	}
	detail := fmt.Sprintf("pods under %s (%s driver), %s: %d pod cgroups, %d container cgroups (sandboxes included)", w.kubepods, w.driver, rt, w.pods, w.leaves)
	switch {
	case w.pods > 0 && w.leaves == 0:
		return warn(detail+": no pod has a container cgroup the known layouts name (cri-containerd-<id>.scope, crio-<id>, docker-<id>.scope, <id>)",
			"look at one pod's cgroup directory; a runtime that names its cgroups otherwise is not supported yet")
	case len(w.others) > 0:
		return warn(fmt.Sprintf("%s; %d cgroups in the kubepods tree match no known layout (such as %s): they are served without pod labels", detail, len(w.others), w.others[0]),
			"look at that directory: a runtime or a kubelet --cgroup-root layout the container layer does not know")
	case w.err != nil:
		return warn(fmt.Sprintf("%s; some cgroups could not be read: %v", detail, w.err), "")
	}
	return okf("%s", detail)
}

// podsResult is the kubelet's /pods.
type podsResult struct {
	snap *podmeta.Snapshot
}

// checkContainerPods: the pod cgroups are the pods of the kubelet's
// /pods, and their container cgroups its containers (or sandboxes).
func checkContainerPods(ctx context.Context, d *doctor) outcome {
	w, err := d.walk.get(ctx)
	if errors.Is(err, errNoV2) {
		return skipf("the container layer is off (see host.cgroup)")
	}
	if err != nil {
		return skipf("no cgroup walk: %v", err)
	}
	kc, err := d.kubelet.get(ctx)
	if err != nil {
		return skipf("no kubelet to name the pods: %v", err)
	}
	pr, err := d.kubeletPods.get(ctx)
	if err != nil {
		return skipf("no pod list from the kubelet: see kubelet.rbac.pods")
	}
	snap := pr.snap
	var pods, known, leaves, named, sandboxes int
	var unknown []string
	for _, e := range w.entries {
		switch e.Kind {
		case cgroup.KindPod:
			pods++
			if _, ok := snap.Pods[e.PodUID]; ok {
				known++
			} else {
				unknown = append(unknown, e.PodUID)
			}
		case cgroup.KindContainer:
			if e.PodUID == "" {
				continue
			}
			leaves++
			if _, ok := snap.Containers[e.ContainerID]; ok {
				named++
			} else if _, ok := snap.Pods[e.PodUID]; ok {
				sandboxes++ // a leaf of a known pod without a status: its sandbox
			}
		}
	}
	src := kc.URLOf("/pods")
	switch {
	case pods == 0 && len(snap.Containers) > 0:
		return fail(fmt.Sprintf("the kubelet at %s runs %d containers, but there is no pod cgroup under %s", src, len(snap.Containers), d.opts.CgroupFS),
			"give --path.cgroupfs this node's cgroup v2 root (see containers.cgroups)")
	case pods > 0 && known == 0 && len(snap.Pods) > 0:
		return fail(fmt.Sprintf("none of the %d pod cgroups is one of the %d pods of the kubelet at %s: that kubelet is another node's, or the cgroups are", pods, len(snap.Pods), src),
			"point --kubelet.url (or NODE_IP) at this node's kubelet")
	case len(unknown) > 0:
		return warn(fmt.Sprintf("%d of %d pod cgroups are not pods of the kubelet's /pods (such as pod %s): pods being created or removed, which the next refresh names; their series carry no pod labels until then", len(unknown), pods, unknown[0]),
			"run doctor again; pods that stay unknown are cgroups the runtime left behind")
	}
	return okf("%d of %d pod cgroups are pods of the kubelet's /pods; of %d container cgroups, %d are its containers and %d pod sandboxes", known, pods, leaves, named, sandboxes)
}

// joinAnd lists items as a sentence does: "a, b and c".
func joinAnd(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}
