package cadvisor

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// This file generates cgroup v2 fixture trees in the kernel's real file
// formats: the golden cases under testdata/cadvisor/ (committed as plain
// files; go test -run TestCadvisorFixtures -update rewrites them) and the
// 1,000-container tree of the benchmarks (written to a temporary
// directory). A case directory holds:
//
//	cgroup/     the hierarchy (--path.cgroupfs)
//	proc/       /proc files: meminfo, diskstats, <pid>/net/dev, <pid>/ns/net
//	mtimes      "<unix seconds> <cgroup id>" per cgroup: creation times,
//	            applied to a copy of the tree (git does not keep mtimes)
//	pods.json   optional: the kubelet's /pods, served as pod metadata
//	args        optional: the collector's flags, one per line
//	mkdir       optional: Go-quoted directories made in the copy at test
//	            time (names git should not carry, such as non-UTF-8 ones)
//	want.prom   the exact exposition
//	want.err    optional: text the collector's error must contain

// fixture is a cgroup tree plus the /proc files and pod metadata beside it.
type fixture struct {
	cgroups []*fxCgroup
	procs   map[int]fxProc
	pods    []corev1.Pod
	hasPods bool
	args    []string
	mkdirs  []string
	// full writes every control file a real cgroup has, not only those
	// nodeagent reads (the benchmark tree; golden trees stay small).
	full bool
	next int // seed for the next cgroup's numbers
}

type fxCgroup struct {
	path    string
	files   map[string]string
	created int64
	oomKill int // its own; memory.events counts its subtree's (write)
}

type fxProc struct {
	netns  string
	netDev string
}

// cgVals are the knobs of one generated cgroup; counters derive from n.
type cgVals struct {
	n       int
	quota   int   // cpu.max quota µs per 100000; 0 = max
	weight  int   // cpu.weight
	memMax  int64 // 0 = max
	memMin  int64
	pidsMax int // 0 = max
	pids    []int
	io      bool // has done I/O on 254:0
	oomKill int
}

const fixtureEpoch = 1782468700 // 2026-06-26T10:11:40Z, near the 1.35 capture

// add appends a cgroup with the files of a non-root cgroup.
func (f *fixture) add(path string, v cgVals, created int64) {
	f.cgroups = append(f.cgroups, &fxCgroup{path: path, files: f.cgroupFiles(v, false), created: created, oomKill: v.oomKill})
}

// memoryEvents is memory.events with oomKill OOM kills (and, as a cgroup
// that is OOM-killed has been throttled at memory.high and hit
// memory.max first, 3 and 2 times as many of those).
func memoryEvents(oomKill int) string {
	return fmt.Sprintf("low 0\nhigh %d\nmax %d\noom %d\noom_kill %d\noom_group_kill 0\n", 3*oomKill, 2*oomKill, oomKill, oomKill)
}

// subtreeEvents makes memory.events count each cgroup's subtree, as the
// kernel's does: a container's OOM kills are its pod's, its QoS class's
// and the kubepods slice's too.
func (f *fixture) subtreeEvents() {
	total := map[string]int{}
	for _, cg := range f.cgroups {
		for p := cg.path; cg.oomKill > 0; p = path.Dir(p) {
			total[p] += cg.oomKill
			if p == "/" {
				break
			}
		}
	}
	for _, cg := range f.cgroups {
		if _, ok := cg.files["memory.events"]; ok {
			cg.files["memory.events"] = memoryEvents(total[cg.path])
		}
	}
}

// vals returns default knobs with a fresh seed.
func (f *fixture) vals() cgVals {
	f.next++
	return cgVals{n: f.next, weight: 100}
}

func (f *fixture) cgroupFiles(v cgVals, root bool) map[string]string {
	n := uint64(v.n)
	usage := 1000003*n + 12345
	user := usage * 2 / 3
	file := (n%7 + 1) * 1048576
	anon := (n%5+2)*2097152 + 4096*n
	inactive := file / 2
	current := anon + file + 65536
	cpuStat := fmt.Sprintf("usage_usec %d\nuser_usec %d\nsystem_usec %d\n", usage, user, usage-user)
	if !root {
		periods := uint64(0)
		if v.quota > 0 {
			periods = 100*n + 3
		}
		cpuStat += fmt.Sprintf("nr_periods %d\nnr_throttled %d\nthrottled_usec %d\nnr_bursts %d\nburst_usec %d\n",
			periods, periods/10, periods/10*4321, periods/20, periods/20*1234)
	}
	pressure := func(k uint64) string {
		return fmt.Sprintf("some avg10=0.00 avg60=0.00 avg300=0.00 total=%d\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=%d\n", 1000*n+k, 500*n+k)
	}
	var ioStat string
	if v.io {
		ioStat = fmt.Sprintf("254:0 rbytes=%d wbytes=%d rios=%d wios=%d dbytes=0 dios=0\n", 4096*n, 8192*n+4096, n, 2*n+1)
	}
	var procs strings.Builder
	for _, p := range v.pids {
		fmt.Fprintf(&procs, "%d\n", p)
	}
	files := map[string]string{
		"cgroup.procs":    procs.String(),
		"cpu.stat":        cpuStat,
		"cpu.pressure":    pressure(1),
		"memory.pressure": pressure(2),
		"io.pressure":     pressure(3),
		"memory.stat":     memoryStat(anon, file, inactive, n),
		"io.stat":         ioStat,
	}
	if root {
		files["cgroup.controllers"] = "cpuset cpu io memory hugetlb pids rdma misc\n"
		files["cgroup.subtree_control"] = "cpuset cpu io memory pids\n"
		files["cgroup.stat"] = "nr_descendants 20\nnr_dying_descendants 0\n"
		return files
	}
	maxOr := func(x int64) string {
		if x == 0 {
			return "max\n"
		}
		return strconv.FormatInt(x, 10) + "\n"
	}
	quota := "max"
	if v.quota > 0 {
		quota = strconv.Itoa(v.quota)
	}
	files["cpu.max"] = quota + " 100000\n"
	files["cpu.weight"] = strconv.Itoa(v.weight) + "\n"
	files["memory.current"] = strconv.FormatUint(current, 10) + "\n"
	files["memory.peak"] = strconv.FormatUint(current*3/2, 10) + "\n"
	files["memory.max"] = maxOr(v.memMax)
	files["memory.min"] = strconv.FormatInt(v.memMin, 10) + "\n"
	files["memory.swap.current"] = "0\n"
	files["memory.swap.max"] = "0\n"
	files["memory.events"] = memoryEvents(v.oomKill)
	files["pids.current"] = strconv.Itoa(len(v.pids)+int(n%3)) + "\n"
	files["pids.max"] = maxOr(int64(v.pidsMax))
	files["cgroup.events"] = fmt.Sprintf("populated %d\nfrozen 0\n", min(1, len(v.pids)))
	if f.full {
		for name, content := range realControlFiles() {
			files[name] = content
		}
	}
	return files
}

// realControlFiles are the other files of a 6.x kernel's cgroup with the
// cpu, io, memory and pids controllers, so that directory listings in the
// benchmark tree are as long as real ones.
func realControlFiles() map[string]string {
	return map[string]string{
		"cgroup.controllers": "cpu io memory pids\n", "cgroup.freeze": "0\n", "cgroup.kill": "",
		"cgroup.max.depth": "max\n", "cgroup.max.descendants": "max\n", "cgroup.pressure": "1\n",
		"cgroup.stat": "nr_descendants 0\nnr_dying_descendants 0\n", "cgroup.subtree_control": "",
		"cgroup.threads": "", "cgroup.type": "domain\n", "cpu.idle": "0\n", "cpu.max.burst": "0\n",
		"cpu.stat.local": "throttled_usec 0\n", "cpu.uclamp.max": "max\n", "cpu.uclamp.min": "0.00\n",
		"cpu.weight.nice": "0\n", "io.bfq.weight": "default 100\n", "io.latency": "", "io.max": "",
		"io.prio.class": "no-change\n", "io.weight": "default 100\n", "memory.events.local": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
		"memory.high": "max\n", "memory.low": "0\n", "memory.numa_stat": "anon N0=0\n", "memory.oom.group": "0\n",
		"memory.reclaim": "", "memory.swap.events": "high 0\nmax 0\nfail 0\n", "memory.swap.high": "max\n",
		"memory.swap.peak": "0\n", "memory.zswap.current": "0\n", "memory.zswap.max": "max\n",
		"memory.zswap.writeback": "1\n", "pids.events": "max 0\n", "pids.peak": "3\n",
	}
}

// memoryStat writes a 6.x kernel's memory.stat with the given sizes.
func memoryStat(anon, file, inactiveFile, n uint64) string {
	keys := []struct {
		k string
		v uint64
	}{
		{"anon", anon}, {"file", file}, {"kernel", 262144 + 4096*n}, {"kernel_stack", 32768}, {"pagetables", 98304},
		{"sec_pagetables", 0}, {"percpu", 1440}, {"sock", 0}, {"vmalloc", 0}, {"shmem", 0}, {"zswap", 0}, {"zswapped", 0},
		{"file_mapped", file / 4}, {"file_dirty", 4096 * (n % 3)}, {"file_writeback", 4096 * (n % 2)}, {"swapcached", 0}, {"anon_thp", 0},
		{"file_thp", 0}, {"shmem_thp", 0}, {"inactive_anon", anon}, {"active_anon", 4096}, {"inactive_file", inactiveFile},
		{"active_file", file - inactiveFile}, {"unevictable", 0}, {"slab_reclaimable", 65536}, {"slab_unreclaimable", 131072},
		{"slab", 196608}, {"workingset_refault_anon", n % 4}, {"workingset_refault_file", n}, {"workingset_activate_anon", 0},
		{"workingset_activate_file", 0}, {"workingset_restore_anon", 0}, {"workingset_restore_file", 0},
		{"workingset_nodereclaim", 0}, {"pgscan", 10 * n}, {"pgsteal", 9 * n}, {"pgscan_kswapd", 10 * n}, {"pgscan_direct", 0},
		{"pgscan_khugepaged", 0}, {"pgsteal_kswapd", 9 * n}, {"pgsteal_direct", 0}, {"pgsteal_khugepaged", 0},
		{"pgfault", 1000*n + 17}, {"pgmajfault", n}, {"pgrefill", 0}, {"pgactivate", 2}, {"pgdeactivate", 0},
		{"pglazyfree", 0}, {"pglazyfreed", 0}, {"zswpin", 0}, {"zswpout", 0}, {"thp_fault_alloc", 0}, {"thp_collapse_alloc", 0},
	}
	var b strings.Builder
	for _, kv := range keys {
		fmt.Fprintf(&b, "%s %d\n", kv.k, kv.v)
	}
	return b.String()
}

// netDev writes a /proc/<pid>/net/dev with lo, eth0 and the tunnel stubs
// a pod network namespace has when the ipip/gre modules are loaded.
func netDev(n int, stubs bool) string {
	var b strings.Builder
	b.WriteString("Inter-|   Receive                                                |  Transmit\n")
	b.WriteString(" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	line := func(name string, k int) {
		fmt.Fprintf(&b, "%6s: %d %d %d %d 0 0 0 0 %d %d %d %d 0 0 0 0\n", name, 1000*k+n, 10*k+n, k%2, k%3, 900*k+n, 9*k+n, 0, k%2)
	}
	line("lo", 1)
	line("eth0", 100+n)
	if stubs {
		for _, s := range []string{"tunl0", "gre0", "sit0"} {
			fmt.Fprintf(&b, "%6s: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n", s)
		}
	}
	return b.String()
}

// write writes the fixture under dir: cgroup/, proc/, mtimes, pods.json,
// args, mkdir.
func (f *fixture) write(t testing.TB, dir string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.subtreeEvents()
	root := f.rootCgroup()
	var mtimes strings.Builder
	for _, cg := range append([]*fxCgroup{root}, f.cgroups...) {
		d := filepath.Join(dir, "cgroup", filepath.FromSlash(cg.path))
		must(os.MkdirAll(d, 0o755))
		for name, content := range cg.files {
			must(os.WriteFile(filepath.Join(d, name), []byte(content), 0o644))
		}
		fmt.Fprintf(&mtimes, "%d %s\n", cg.created, cg.path)
	}
	must(os.WriteFile(filepath.Join(dir, "mtimes"), []byte(mtimes.String()), 0o644))
	proc := filepath.Join(dir, "proc")
	must(os.MkdirAll(proc, 0o755))
	must(os.WriteFile(filepath.Join(proc, "meminfo"), []byte("MemTotal:        8024304 kB\nMemFree:         2097152 kB\nSwapTotal:       1048572 kB\nSwapFree:        1048572 kB\n"), 0o644))
	must(os.WriteFile(filepath.Join(proc, "diskstats"), []byte(" 254       0 vda 31283 0 958 1120 31228 0 5249696 9232 0 8596 10353 0 0 0 0 0 0\n 254       1 vda1 31000 0 900 1100 31200 0 5249600 9200 0 8500 10300 0 0 0 0 0 0\n"), 0o644))
	pids := make([]int, 0, len(f.procs))
	for pid := range f.procs {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	for _, pid := range pids {
		p := f.procs[pid]
		pd := filepath.Join(proc, strconv.Itoa(pid))
		must(os.MkdirAll(filepath.Join(pd, "net"), 0o755))
		must(os.MkdirAll(filepath.Join(pd, "ns"), 0o755))
		must(os.WriteFile(filepath.Join(pd, "net", "dev"), []byte(p.netDev), 0o644))
		must(os.Symlink(p.netns, filepath.Join(pd, "ns", "net")))
	}
	if f.hasPods {
		b, err := json.MarshalIndent(corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: f.pods}, "", "  ")
		must(err)
		must(os.WriteFile(filepath.Join(dir, "pods.json"), append(b, '\n'), 0o644))
	}
	if len(f.args) > 0 {
		must(os.WriteFile(filepath.Join(dir, "args"), []byte(strings.Join(f.args, "\n")+"\n"), 0o644))
	}
	if len(f.mkdirs) > 0 {
		var b strings.Builder
		for _, d := range f.mkdirs {
			b.WriteString(strconv.Quote(d) + "\n")
		}
		must(os.WriteFile(filepath.Join(dir, "mkdir"), []byte(b.String()), 0o644))
	}
}

// rootCgroup is the hierarchy's root: no limit files, host processes.
func (f *fixture) rootCgroup() *fxCgroup {
	v := cgVals{n: 1000, pids: []int{1, 2, 3}, io: true}
	return &fxCgroup{path: "/", files: f.cgroupFiles(v, true), created: fixtureEpoch - 86400}
}

// podSpec describes a pod to generate: its containers and its cgroup.
type podSpec struct {
	uid, namespace, name string
	qos                  string // guaranteed, burstable, besteffort
	containers           []string
	quota                int // per container; the pod gets the sum
	memMax               int64
	hostNetwork          bool
	// unlisted leaves the pod out of pods.json (a pod /pods lags behind).
	unlisted bool
}

// layout names cgroups the way one cgroup driver and runtime do.
type layout struct {
	systemd bool
	runtime string // containerd, crio, docker
	conmon  bool   // CRI-O's conmon cgroup beside each container
}

func (l layout) kubepods() string {
	if l.systemd {
		return "/kubepods.slice"
	}
	return "/kubepods"
}

func (l layout) qos(q string) string {
	if l.systemd {
		return l.kubepods() + "/kubepods-" + q + ".slice"
	}
	return l.kubepods() + "/" + q
}

func (l layout) pod(p *podSpec) string {
	parent := l.kubepods()
	if p.qos != "guaranteed" {
		parent = l.qos(p.qos)
	}
	if l.systemd {
		prefix := "kubepods-"
		if p.qos != "guaranteed" {
			prefix += p.qos + "-"
		}
		return parent + "/" + prefix + "pod" + strings.ReplaceAll(p.uid, "-", "_") + ".slice"
	}
	return parent + "/pod" + p.uid
}

func (l layout) leaf(pod, id string) string {
	switch {
	case l.systemd && l.runtime == "containerd":
		return pod + "/cri-containerd-" + id + ".scope"
	case l.systemd:
		return pod + "/" + l.runtime + "-" + id + ".scope"
	case l.runtime == "crio":
		return pod + "/crio-" + id
	}
	return pod + "/" + id
}

func (l layout) scheme() string {
	if l.runtime == "crio" {
		return "cri-o://"
	}
	return l.runtime + "://"
}

// containerID derives a 64-hex ID from a seed string.
func containerID(seed string) string {
	h := uint64(14695981039346656037)
	var b strings.Builder
	for b.Len() < 64 {
		for i := 0; i < len(seed); i++ {
			h ^= uint64(seed[i])
			h *= 1099511628211
		}
		fmt.Fprintf(&b, "%016x", h)
	}
	return b.String()[:64]
}

// kubernetes adds the kubepods tree (kubepods, the QoS classes, the pods
// with their sandboxes and containers) and pods.json entries.
func (f *fixture) kubernetes(l layout, pods []podSpec, pidBase int) {
	f.hasPods = true
	kv := f.vals()
	kv.memMax, kv.pidsMax, kv.weight = 8216887296, 62639, 547
	f.add(l.kubepods(), kv, fixtureEpoch+29)
	for _, q := range []string{"besteffort", "burstable"} {
		v := f.vals()
		if q == "besteffort" {
			v.weight = 1
		} else {
			v.weight = 50
		}
		f.add(l.qos(q), v, fixtureEpoch+29)
	}
	hostNS := "net:[4026531840]"
	f.procs[1] = fxProc{netns: hostNS, netDev: netDev(0, true)}
	for i := range pods {
		p := &pods[i]
		podStart := int64(fixtureEpoch + 60 + 10*i)
		podPath := l.pod(p)
		v := f.vals()
		v.quota = p.quota * len(p.containers)
		v.memMax = p.memMax * int64(len(p.containers))
		v.weight = map[string]int{"guaranteed": 79, "burstable": 20, "besteffort": 1}[p.qos]
		f.add(podPath, v, podStart)

		sandboxID := containerID(p.uid + "/sandbox")
		pid := pidBase + 100*i
		sv := f.vals()
		sv.pids, sv.weight = []int{pid}, 1
		f.add(l.leaf(podPath, sandboxID), sv, podStart)
		ns := fmt.Sprintf("net:[40265%05d]", i)
		if p.hostNetwork {
			ns = hostNS
		}
		f.procs[pid] = fxProc{netns: ns, netDev: netDev(i+1, true)}

		pod := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.namespace, UID: types.UID(p.uid)},
			Spec:       corev1.PodSpec{HostNetwork: p.hostNetwork},
			Status: corev1.PodStatus{
				Phase: corev1.PodRunning, QOSClass: corev1.PodQOSClass(strings.ToUpper(p.qos[:1]) + p.qos[1:]),
				StartTime: &metav1.Time{Time: time.Unix(podStart, 0).UTC()},
			},
		}
		for j, name := range p.containers {
			id := containerID(p.uid + "/" + name)
			cv := f.vals()
			cv.quota, cv.memMax, cv.pids, cv.io = p.quota, p.memMax, []int{pid + j + 1}, j == 0
			cv.weight = map[string]int{"guaranteed": 40, "burstable": 10, "besteffort": 1}[p.qos]
			if p.memMax > 0 && j == 0 {
				cv.oomKill = 1 // an OOM kill that cAdvisor's counter would miss
			}
			started := podStart + 2 + int64(j)
			f.add(l.leaf(podPath, id), cv, started)
			if l.conmon {
				f.add(l.leaf(podPath, "conmon-"+id), f.vals(), started)
			}
			image := fmt.Sprintf("registry.example/%s:%d.0", name, j+1)
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: name, Image: image})
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
				Name: name, Image: image, ContainerID: l.scheme() + id, Ready: true,
				State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Time{Time: time.Unix(started, 0).UTC()}}},
			})
		}
		if !p.unlisted {
			f.pods = append(f.pods, pod)
		}
	}
}

// services adds host cgroups: system.slice with units, init.scope, a user
// session.
func (f *fixture) services(units ...string) {
	sv := f.vals()
	f.add("/system.slice", sv, fixtureEpoch+1)
	for i, u := range units {
		v := f.vals()
		v.pids, v.io, v.pidsMax = []int{200 + i}, i == 0, 4915
		f.add("/system.slice/"+u, v, fixtureEpoch+2+int64(i))
	}
	iv := f.vals()
	iv.pids = []int{1}
	f.add("/init.scope", iv, fixtureEpoch)
	f.add("/user.slice", f.vals(), fixtureEpoch+5)
	f.add("/user.slice/user-1000.slice", f.vals(), fixtureEpoch+300)
	uv := f.vals()
	uv.pids = []int{4242, 4243}
	f.add("/user.slice/user-1000.slice/session-1.scope", uv, fixtureEpoch+300)
}

const (
	uidGuaranteed = "5e5613d6-fccb-40d6-967b-447697d4d871"
	uidBurstable  = "36447428-81f8-45eb-b825-414de2e8012b"
	uidBestEffort = "90565722-42c8-4f10-a59b-c8fc6571e86d"
	uidStatic     = "07bd11a0a13dfe5450a17a39eb8e32d2"
	uidUnlisted   = "b74071bf-fab2-44d0-9850-55ff20eda8c3"
)

// qosPods are a Guaranteed, a Burstable, a BestEffort, a static (host
// network) pod, and one /pods does not list yet.
func qosPods() []podSpec {
	return []podSpec{
		{uid: uidGuaranteed, namespace: "shop", name: "checkout-7d9f", qos: "guaranteed", containers: []string{"app", "envoy"}, quota: 50000, memMax: 268435456},
		{uid: uidBurstable, namespace: "kube-system", name: "coredns-6f4b", qos: "burstable", containers: []string{"coredns"}, quota: 20000},
		{uid: uidBestEffort, namespace: "default", name: "debug", qos: "besteffort", containers: []string{"shell"}},
		{uid: uidStatic, namespace: "kube-system", name: "etcd-node-1", qos: "burstable", containers: []string{"etcd"}, hostNetwork: true},
		{uid: uidUnlisted, namespace: "default", name: "new-pod", qos: "besteffort", containers: []string{"main"}, unlisted: true},
	}
}

// cadvisorCases are the golden cases' fixtures by name.
func cadvisorCases() map[string]func() *fixture {
	base := func() *fixture { return &fixture{procs: map[int]fxProc{}} }
	return map[string]func() *fixture{
		"systemd-containerd": func() *fixture {
			f := base()
			f.services("containerd.service", "kubelet.service")
			f.kubernetes(layout{systemd: true, runtime: "containerd"}, qosPods(), 1000)
			f.args = []string{"--collector.cadvisor.sandbox-image=registry.k8s.io/pause:3.10.1"}
			return f
		},
		"cgroupfs-containerd": func() *fixture {
			f := base()
			f.services("kubelet.service")
			f.kubernetes(layout{runtime: "containerd"}, qosPods()[:3], 1000)
			return f
		},
		"crio-conmon": func() *fixture {
			f := base()
			f.services("crio.service", "kubelet.service")
			f.kubernetes(layout{systemd: true, runtime: "crio", conmon: true}, qosPods()[1:3], 1000)
			f.args = []string{"--collector.cadvisor.sandbox-image=registry.k8s.io/pause:3.10.1"}
			return f
		},
		"bare-metal": func() *fixture {
			f := base()
			f.services("sshd.service", "nginx.service", "docker.service")
			v := f.vals()
			v.pids = []int{3000}
			f.add("/system.slice/docker-"+containerID("plain-docker")+".scope", v, fixtureEpoch+400)
			f.procs[1] = fxProc{netns: "net:[4026531840]", netDev: netDev(0, false)}
			return f
		},
		// The agent in a container without the host's PID namespace: the
		// host services' cgroup.procs list their processes as 0. They are
		// counted in container_processes and never read as a PID.
		"bare-metal-no-host-pid": func() *fixture {
			f := base()
			f.services("sshd.service", "nginx.service")
			for _, cg := range f.cgroups {
				switch cg.path {
				case "/system.slice/sshd.service", "/system.slice/nginx.service":
					cg.files["cgroup.procs"] = "0\n0\n"
				case "/init.scope":
					cg.files["cgroup.procs"] = "0\n"
				case "/user.slice/user-1000.slice/session-1.scope":
					cg.files["cgroup.procs"] = "0\n4243\n0\n" // one process in the agent's namespace
				}
			}
			f.procs[1] = fxProc{netns: "net:[4026531840]", netDev: netDev(0, false)}
			return f
		},
		"no-metadata": func() *fixture {
			f := base()
			f.kubernetes(layout{systemd: true, runtime: "containerd"}, qosPods()[:2], 1000)
			f.hasPods = false
			return f
		},
		"cardinality": func() *fixture {
			f := base()
			f.services("kubelet.service")
			f.kubernetes(layout{systemd: true, runtime: "containerd"}, qosPods()[:3], 1000)
			f.args = []string{
				"--collector.cadvisor.drop-id-label",
				"--collector.cadvisor.drop-name-label",
				"--collector.cadvisor.skip-sandboxes",
				"--collector.cadvisor.skip-qos",
				"--collector.cadvisor.metric-include=container_(cpu|memory)_.*",
				"--collector.cadvisor.metric-exclude=container_memory_(failures_total|mapped_file)",
			}
			return f
		},
		"bad-input": func() *fixture {
			f := base()
			f.services("kubelet.service")
			f.kubernetes(layout{systemd: true, runtime: "containerd"}, qosPods()[:1], 1000)
			pod := layout{systemd: true, runtime: "containerd"}.pod(&qosPods()[0])
			for _, cg := range f.cgroups {
				switch cg.path {
				case pod + "/cri-containerd-" + containerID(uidGuaranteed+"/app") + ".scope":
					cg.files["memory.stat"] = "anon 4096\nfile 8192\ninactive_fi" // truncated
				case pod + "/cri-containerd-" + containerID(uidGuaranteed+"/envoy") + ".scope":
					cg.files["io.stat"] = "254:0 rbytes=1 wbytes=oops\n"
					cg.files["cpu.max"] = "50000\n"
				}
			}
			f.mkdirs = []string{"/system.slice/bad\xff\xfe.service"}
			return f
		},
	}
}

// TestCadvisorFixtures checks that the committed fixture trees are what
// the generator writes; go test -run TestCadvisorFixtures -update
// rewrites them (and keeps want.prom, which TestCadvisorGoldenCases
// -update rewrites).
func TestCadvisorFixtures(t *testing.T) {
	t.Parallel()
	for name, gen := range cadvisorCases() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join("testdata", "cadvisor", name)
			if collectortest.Updating() {
				for _, sub := range []string{"cgroup", "proc", "mtimes", "pods.json", "args", "mkdir"} {
					if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
						t.Fatal(err)
					}
				}
				gen().write(t, dir)
				return
			}
			tmp := t.TempDir()
			gen().write(t, tmp)
			want := listTree(t, tmp)
			got := listTree(t, dir)
			delete(got, "want.prom")
			delete(got, "want.err")
			if len(want) != len(got) {
				t.Errorf("%s has %d files, the generator writes %d (go test -run TestCadvisorFixtures -update)", dir, len(got), len(want))
			}
			for p, content := range want {
				if got[p] != content {
					t.Errorf("%s/%s differs from the generator's (go test -run TestCadvisorFixtures -update)", dir, p)
				}
			}
		})
	}
}

// listTree maps every file (and symlink target) under dir to its content.
func listTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			out[rel] = "-> " + target
			return err
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
