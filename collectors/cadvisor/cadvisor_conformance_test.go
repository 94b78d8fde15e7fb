package cadvisor

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/sysfs"

	"github.com/nodeagent/nodeagent/internal/fakekubelet"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The 1.35 capture: a real kubelet's /metrics/cadvisor and /pods of one
// node (internal/fakekubelet/testdata/README.md gives their provenance).
// The 1.37 capture: a real kubelet 1.37's /metrics/cadvisor on a hybrid
// host, whose values are v1's but whose families, types and help are the
// newer cAdvisor's.
const (
	capture135     = "k8s-1.35_metrics-cadvisor.txt"
	capturePods135 = "k8s-1.35_pods.json"
	capture137     = "k8s-1.37-local_metrics-cadvisor.txt"
)

// notServed are the capture's families nodeagent leaves out on purpose.
func notServed() map[string]string {
	const alwaysZero = "always 0 on cgroup v2 (cAdvisor reads v1-only files or runs a loader that is off)"
	const fsStats = "cAdvisor's per-filesystem stats of the root cgroup (statfs and /proc/diskstats per mount): host data node_exporter's filesystem and diskstats collectors serve; per-container usage would need du"
	const perProcess = "a walk of every process's /proc/<pid>/fd (and limits) per scrape, which costs more than the rest of the scrape; not in the design's table"
	return map[string]string{
		"cadvisor_version_info":                       "cAdvisor's own build info; nodeagent_build_info describes nodeagent",
		"container_scrape_error":                      "cAdvisor's own error flag; nodeagent_scrape_collector_success{collector=\"cadvisor\"} says the same",
		"machine_scrape_error":                        "cAdvisor's own error flag; nodeagent_scrape_collector_success{collector=\"machine\"} says the same",
		"machine_nvm_avg_power_budget_watts":          "Intel Optane (NVM) only, 0 elsewhere",
		"machine_nvm_capacity":                        "Intel Optane (NVM) only, 0 elsewhere",
		"machine_cpu_books":                           "IBM Z (s390x) CPU topology only, 0 elsewhere",
		"machine_cpu_drawers":                         "IBM Z (s390x) CPU topology only, 0 elsewhere",
		"container_health_state":                      "the result of a Docker health check; -1 (none defined) for every container of the runtimes the kubelet's cAdvisor handles",
		"container_cpu_load_average_10s":              alwaysZero,
		"container_cpu_load_d_average_10s":            alwaysZero,
		"container_memory_failcnt":                    alwaysZero,
		"container_memory_kernel_usage":               alwaysZero,
		"container_tasks_state":                       alwaysZero,
		"container_file_descriptors":                  perProcess,
		"container_sockets":                           perProcess,
		"container_ulimits_soft":                      perProcess,
		"container_fs_inodes_free":                    fsStats,
		"container_fs_inodes_total":                   fsStats,
		"container_fs_io_current":                     fsStats,
		"container_fs_io_time_seconds_total":          fsStats,
		"container_fs_io_time_weighted_seconds_total": fsStats,
		"container_fs_limit_bytes":                    fsStats,
		"container_fs_usage_bytes":                    fsStats,
		"container_fs_read_seconds_total":             fsStats,
		"container_fs_write_seconds_total":            fsStats,
		"container_fs_reads_merged_total":             fsStats,
		"container_fs_writes_merged_total":            fsStats,
		"container_fs_sector_reads_total":             fsStats,
		"container_fs_sector_writes_total":            fsStats,
	}
}

// capture indexes a parsed exposition by family and id label.
type capture struct {
	mfs  map[string]*dto.MetricFamily
	byID map[string]map[string][]*dto.Metric
}

func labelOf(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func valueOf(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

// get returns family's value for id whose other labels match want.
func (c *capture) get(id, family string, want ...string) (float64, bool) {
	for _, m := range c.byID[id][family] {
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			ok = ok && labelOf(m, want[i]) == want[i+1]
		}
		if ok {
			return valueOf(m), true
		}
	}
	return 0, false
}

func usecOf(v float64) uint64 { return uint64(math.Round(v * 1e6)) }

// cgroupFromCapture writes the files of cgroup id that make the collector
// serve the capture's values.
func cgroupFromCapture(t *testing.T, c *capture, id string, pids []int) map[string]string {
	t.Helper()
	files := map[string]string{}
	has := func(fam string) bool { return len(c.byID[id][fam]) > 0 }
	v := func(fam string, labels ...string) float64 {
		x, ok := c.get(id, fam, labels...)
		if !ok {
			t.Fatalf("capture has no %s%v for %s", fam, labels, id)
		}
		return x
	}
	u := func(fam string) uint64 { return uint64(v(fam)) }
	if has("container_cpu_usage_seconds_total") {
		s := fmt.Sprintf("usage_usec %d\nuser_usec %d\nsystem_usec %d\n",
			usecOf(v("container_cpu_usage_seconds_total")), usecOf(v("container_cpu_user_seconds_total")), usecOf(v("container_cpu_system_seconds_total")))
		if has("container_cpu_cfs_periods_total") {
			s += fmt.Sprintf("nr_periods %d\nnr_throttled %d\nthrottled_usec %d\n",
				u("container_cpu_cfs_periods_total"), u("container_cpu_cfs_throttled_periods_total"), usecOf(v("container_cpu_cfs_throttled_seconds_total")))
		}
		files["cpu.stat"] = s
	}
	if has("container_spec_cpu_period") {
		quota := "max"
		if has("container_spec_cpu_quota") {
			quota = strconv.FormatUint(u("container_spec_cpu_quota"), 10)
		}
		files["cpu.max"] = fmt.Sprintf("%s %d\n", quota, u("container_spec_cpu_period"))
	}
	if has("container_spec_cpu_shares") {
		shares := u("container_spec_cpu_shares")
		w := uint64(1)
		for ; w <= 10000 && weightToShares(w) != shares; w++ {
		}
		if w > 10000 {
			t.Fatalf("%s: no cpu.weight gives %d shares", id, shares)
		}
		files["cpu.weight"] = fmt.Sprintf("%d\n", w)
	}
	if has("container_memory_usage_bytes") {
		// The capture's root is a container's cgroup namespace root
		// (minikube in Docker), which has a memory.current.
		files["memory.current"] = fmt.Sprintf("%d\n", u("container_memory_usage_bytes"))
		files["memory.stat"] = fmt.Sprintf("anon %d\nfile %d\nkernel 0\nfile_mapped %d\nactive_file %d\ninactive_file %d\npgfault %d\npgmajfault %d\n",
			u("container_memory_rss"), u("container_memory_cache"), u("container_memory_mapped_file"),
			u("container_memory_total_active_file_bytes"), u("container_memory_total_inactive_file_bytes"),
			uint64(v("container_memory_failures_total", "failure_type", "pgfault", "scope", "container")),
			uint64(v("container_memory_failures_total", "failure_type", "pgmajfault", "scope", "container")))
		files["memory.peak"] = fmt.Sprintf("%d\n", u("container_memory_max_usage_bytes"))
		files["memory.swap.current"] = fmt.Sprintf("%d\n", u("container_memory_swap"))
		files["memory.events"] = fmt.Sprintf("low 0\nhigh 0\nmax 0\noom 0\noom_kill %d\noom_group_kill 0\n", u("container_oom_events_total"))
	}
	limitFile := func(fam string) string {
		if x := u(fam); x > 0 {
			return fmt.Sprintf("%d\n", x)
		}
		return "max\n"
	}
	if has("container_spec_memory_limit_bytes") {
		files["memory.max"] = limitFile("container_spec_memory_limit_bytes")
		files["memory.min"] = fmt.Sprintf("%d\n", u("container_spec_memory_reservation_limit_bytes"))
		files["memory.swap.max"] = limitFile("container_spec_memory_swap_limit_bytes")
	}
	for _, r := range []string{"cpu", "memory", "io"} {
		if has("container_pressure_" + r + "_waiting_seconds_total") {
			files[r+".pressure"] = fmt.Sprintf("some avg10=0.00 avg60=0.00 avg300=0.00 total=%d\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=%d\n",
				usecOf(v("container_pressure_"+r+"_waiting_seconds_total")), usecOf(v("container_pressure_"+r+"_stalled_seconds_total")))
		}
	}
	var io strings.Builder
	for _, m := range c.byID[id]["container_blkio_device_usage_total"] {
		if labelOf(m, "operation") != "Read" {
			continue
		}
		dev := labelOf(m, "device")
		fmt.Fprintf(&io, "%s:%s rbytes=%d wbytes=%d rios=%d wios=%d dbytes=0 dios=0\n", labelOf(m, "major"), labelOf(m, "minor"),
			uint64(valueOf(m)), uint64(v("container_blkio_device_usage_total", "device", dev, "operation", "Write")),
			uint64(v("container_fs_reads_total", "device", dev)), uint64(v("container_fs_writes_total", "device", dev)))
	}
	files["io.stat"] = io.String()
	if has("container_threads") {
		files["pids.current"] = fmt.Sprintf("%d\n", u("container_threads"))
		files["pids.max"] = limitFile("container_threads_max")
	}
	var procs strings.Builder
	for _, p := range pids {
		fmt.Fprintf(&procs, "%d\n", p)
	}
	files["cgroup.procs"] = procs.String()
	files["cgroup.events"] = "populated 1\nfrozen 0\n"
	return files
}

// netDevFromCapture writes a /proc/<pid>/net/dev with the capture's
// interfaces of id, plus lo and a veth that the collector must leave out.
func netDevFromCapture(c *capture, id string) string {
	var b strings.Builder
	b.WriteString("Inter-|   Receive                                                |  Transmit\n")
	b.WriteString(" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	fmt.Fprintf(&b, "%6s: 1000 10 0 0 0 0 0 0 1000 10 0 0 0 0 0 0\n", "lo")
	var ifaces []string
	for _, m := range c.byID[id]["container_network_receive_bytes_total"] {
		ifaces = append(ifaces, labelOf(m, "interface"))
	}
	sort.Strings(ifaces)
	g := func(fam, iface string) uint64 {
		x, _ := c.get(id, fam, "interface", iface)
		return uint64(x)
	}
	for _, i := range ifaces {
		fmt.Fprintf(&b, "%6s: %d %d %d %d 0 0 0 0 %d %d %d %d 0 0 0 0\n", i,
			g("container_network_receive_bytes_total", i), g("container_network_receive_packets_total", i),
			g("container_network_receive_errors_total", i), g("container_network_receive_packets_dropped_total", i),
			g("container_network_transmit_bytes_total", i), g("container_network_transmit_packets_total", i),
			g("container_network_transmit_errors_total", i), g("container_network_transmit_packets_dropped_total", i))
	}
	fmt.Fprintf(&b, "%6s: 5 5 0 0 0 0 0 0 5 5 0 0 0 0 0 0\n", "veth12ab")
	return b.String()
}

// TestCadvisorConformance rebuilds the 1.35 node of the capture as cgroup
// v2 files (cgroupfs driver layout, as the capture has), serves its /pods
// as pod metadata, and requires the container and machine collectors'
// output to equal the kubelet's /metrics/cadvisor for every family served:
// same help, type, label sets and values. The capture's families left out
// on purpose are listed, with why, in notServed.
func TestCadvisorConformance(t *testing.T) {
	t.Parallel()
	raw := fakekubelet.Payload(t, capture135)
	c := &capture{mfs: collectortest.Parse(t, raw), byID: map[string]map[string][]*dto.Metric{}}
	for name, mf := range c.mfs {
		for _, m := range mf.GetMetric() {
			id := labelOf(m, "id")
			if id == "" {
				continue
			}
			if c.byID[id] == nil {
				c.byID[id] = map[string][]*dto.Metric{}
			}
			c.byID[id][name] = append(c.byID[id][name], m)
		}
	}

	tree := t.TempDir()
	cg := filepath.Join(tree, "cgroup")
	proc := filepath.Join(tree, "proc")
	machineLabels := c.mfs["machine_cpu_cores"].GetMetric()[0]
	writeFile(t, filepath.Join(cg, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n")
	// Host cgroups the kubelet does not serve, and must not be served.
	for _, extra := range []string{"system.slice/containerd.service", "init.scope", "user.slice"} {
		writeFile(t, filepath.Join(cg, extra, "cpu.stat"), "usage_usec 1\nuser_usec 1\nsystem_usec 0\n")
		writeFile(t, filepath.Join(cg, extra, "cgroup.procs"), "")
	}

	ids := make([]string, 0, len(c.byID))
	for id := range c.byID {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	nextPID := 1000
	mtimes := map[string]int64{}
	for _, id := range ids {
		n := int(c.byID[id]["container_processes"][0].GetGauge().GetValue())
		var pids []int
		for range n {
			pids = append(pids, nextPID)
			nextPID++
		}
		dir := filepath.Join(cg, filepath.FromSlash(id))
		for name, content := range cgroupFromCapture(t, c, id, pids) {
			writeFile(t, filepath.Join(dir, name), content)
		}
		mtimes[dir] = int64(c.byID[id]["container_start_time_seconds"][0].GetGauge().GetValue())
		if len(c.byID[id]["container_network_receive_bytes_total"]) == 0 {
			continue
		}
		pid := 1 // the root's network is pid 1's
		if id != "/" {
			if len(pids) == 0 {
				t.Fatalf("%s has network but no process", id)
			}
			pid = pids[0]
		}
		pd := filepath.Join(proc, strconv.Itoa(pid))
		writeFile(t, filepath.Join(pd, "net", "dev"), netDevFromCapture(c, id))
		writeFile(t, filepath.Join(pd, "ns", ".keep"), "")
		if err := os.Symlink(fmt.Sprintf("net:[%d]", 4026531840+pid), filepath.Join(pd, "ns", "net")); err != nil {
			t.Fatal(err)
		}
	}
	for dir, secs := range mtimes {
		when := time.Unix(secs, 0)
		if err := os.Chtimes(dir, when, when); err != nil {
			t.Fatal(err)
		}
	}
	memTotal := c.mfs["machine_memory_bytes"].GetMetric()[0].GetGauge().GetValue()
	swapTotal := c.mfs["machine_swap_bytes"].GetMetric()[0].GetGauge().GetValue()
	writeFile(t, filepath.Join(proc, "meminfo"), fmt.Sprintf("MemTotal: %d kB\nMemFree: 1024 kB\nSwapTotal: %d kB\nSwapFree: 0 kB\n", int64(memTotal)/1024, int64(swapTotal)/1024))
	writeFile(t, filepath.Join(proc, "diskstats"), " 254       0 vda 31283 0 958 1120 31228 0 5249696 9232 0 8596 10353 0 0 0 0 0 0\n")
	cores := int(c.mfs["machine_cpu_cores"].GetMetric()[0].GetGauge().GetValue())
	writeFile(t, filepath.Join(proc, "cpuinfo"), cpuinfo(cores, cores, 1, fmt.Sprintf("vendor_id\t: GenuineIntel\ncpu cores\t: %d\n", cores)))
	writeFile(t, filepath.Join(proc, "sys", "kernel", "random", "boot_id"), labelOf(machineLabels, "boot_id")+"\n")
	writeFile(t, filepath.Join(tree, "root", "etc", "machine-id"), labelOf(machineLabels, "machine_id")+"\n")
	writeFile(t, filepath.Join(tree, "sys", "class", "dmi", "id", "product_uuid"), labelOf(machineLabels, "system_uuid")+"\n")

	pfs, err := procfs.NewFS(proc)
	if err != nil {
		t.Fatal(err)
	}
	sfs, err := sysfs.NewFS(filepath.Join(tree, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	env := collectors.Env{
		Logger:      collectortest.Logger(t),
		Paths:       collectors.Paths{ProcFS: proc, SysFS: filepath.Join(tree, "sys"), RootFS: filepath.Join(tree, "root"), CgroupFS: cg},
		Proc:        pfs,
		Sys:         sfs,
		Now:         time.Now,
		PodMetadata: podsFrom(t, capturePods135, fakekubelet.Payload(t, capturePods135)),
	}
	// The kubelet labels sandboxes with the runtime's pause image, which
	// /pods does not name; an operator sets it with this flag.
	cad := buildCadvisor(t, env, "--collector.cadvisor.sandbox-image=registry.k8s.io/pause:3.10.1")
	out, err := collectortest.Exposition(t, cad)
	if err != nil {
		t.Fatalf("container collector: %v", err)
	}
	mach, err := collectortest.Exposition(t, newMachineCollector(env))
	if err != nil {
		t.Fatalf("machine collector: %v", err)
	}
	ours := collectortest.Parse(t, append(out, mach...))

	skip := notServed()
	newer := collectortest.Parse(t, fakekubelet.Payload(t, capture137))
	for name := range ours {
		if _, ok := c.mfs[name]; !ok {
			// Families the 1.35 kubelet did not have yet: their help and
			// type are held to the 1.37 capture's (TestCadvisorFamilies137).
			if _, ok := newer[name]; !ok {
				t.Errorf("%s: served by nodeagent, not by the kubelet", name)
			}
		}
		if reason, ok := skip[name]; ok {
			t.Errorf("%s: served, yet listed as not served (%s)", name, reason)
		}
	}
	compared := 0
	for name, theirs := range c.mfs {
		if _, ok := skip[name]; ok {
			continue
		}
		mine, ok := ours[name]
		if !ok {
			t.Errorf("%s: served by the kubelet, not by nodeagent, and not listed in notServed", name)
			continue
		}
		compared++
		if mine.GetType() != theirs.GetType() || mine.GetHelp() != theirs.GetHelp() {
			t.Errorf("%s: %s %q, the kubelet's %s %q", name, mine.GetType(), mine.GetHelp(), theirs.GetType(), theirs.GetHelp())
		}
		want, got := collectortest.Series(theirs), collectortest.Series(mine)
		switch name {
		case "container_last_seen":
			// The collection time: compare the label sets only.
			for k := range want {
				want[k] = "now"
			}
			for k := range got {
				got[k] = "now"
			}
		case "container_fs_reads_total", "container_fs_writes_total":
			// cAdvisor adds per-filesystem counts to the root cgroup
			// (see container_fs_* in notServed); nodeagent serves io.stat's.
			for k := range want {
				if strings.Contains(k, `id="/"`) && !strings.Contains(k, `device="/dev/vda"`) {
					delete(want, k)
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: series differ (-kubelet +nodeagent):\n%s", name, diff)
		}
	}
	// The 1.37 kubelet serves each cgroup's creation time under a name of
	// its own too: the same values as container_start_time_seconds.
	if created, ok := ours["container_creation_time_seconds"]; !ok {
		t.Error("container_creation_time_seconds is not served")
	} else if diff := cmp.Diff(collectortest.Series(c.mfs["container_start_time_seconds"]), collectortest.Series(created)); diff != "" {
		t.Errorf("container_creation_time_seconds against the capture's container_start_time_seconds (-kubelet +nodeagent):\n%s", diff)
	}
	t.Logf("compared %d families; %d of the capture's left out on purpose", compared, len(skip))
	if compared < 40 {
		t.Errorf("only %d families compared", compared)
	}
}

// TestCadvisorFamilies137 holds the collectors' families to the 1.37
// kubelet's /metrics/cadvisor: every family it serves is one nodeagent
// has, with the same help and type, or is listed in notServed; nodeagent
// has no family that neither capture knows.
func TestCadvisorFamilies137(t *testing.T) {
	t.Parallel()
	kubelet := collectortest.Parse(t, fakekubelet.Payload(t, capture137))
	older := collectortest.Parse(t, fakekubelet.Payload(t, capture135))
	type fam struct {
		help string
		typ  dto.MetricType
	}
	ours := map[string]fam{}
	for _, f := range allContainerFamilies() {
		ours[f.name] = fam{f.help, f.typ}
	}
	machine := collectortest.Parse(t, collectortest.ReadFile(t, filepath.Join("testdata", "machine", "good.prom")))
	for name, mf := range machine {
		ours[name] = fam{mf.GetHelp(), mf.GetType()}
	}
	skip := notServed()
	for name, mf := range kubelet {
		f, served := ours[name]
		reason, skipped := skip[name]
		switch {
		case served && skipped:
			t.Errorf("%s: served, yet listed as not served (%s)", name, reason)
		case !served && !skipped:
			t.Errorf("%s: served by the 1.37 kubelet, not by nodeagent, and not listed in notServed", name)
		case served && (f.help != mf.GetHelp() || f.typ != mf.GetType()):
			t.Errorf("%s: %s %q, the 1.37 kubelet's %s %q", name, f.typ, f.help, mf.GetType(), mf.GetHelp())
		}
	}
	for name := range ours {
		_, now := kubelet[name]
		_, before := older[name]
		if !now && !before {
			t.Errorf("%s: in neither capture", name)
		}
	}
}
