package doctor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Host checks: are --path.procfs, --path.sysfs and --path.rootfs the
// host's and not a container's own, does this process share the host's
// network namespace, which cgroup layout the host has, and whether the
// kernel has PSI.

const hostPathsFix = "in the DaemonSet mount the host's /proc, /sys and / (hostPath volumes at /host/proc, /host/sys, /host/root) and give --path.procfs=/host/proc --path.sysfs=/host/sys --path.rootfs=/host/root"

// checkProcFS: <procfs> is a procfs of the running kernel (same boot ID
// as this process's own /proc) and of the initial PID namespace: there,
// PID 2 is the kernel's kthreadd; in a container's PID namespace it is
// not (PID 1 is the container's entrypoint or pause).
func checkProcFS(_ context.Context, d *doctor) outcome {
	proc := d.opts.ProcFS
	boot, err := readTrim(filepath.Join(proc, "sys/kernel/random/boot_id"))
	if err != nil {
		return fail(fmt.Sprintf("--path.procfs %s is not a procfs: %v", proc, err), hostPathsFix)
	}
	if own, err := readTrim(filepath.Join(d.opts.SelfProc, "sys/kernel/random/boot_id")); err == nil && own != boot {
		return fail(fmt.Sprintf("--path.procfs %s has boot ID %s, the running kernel %s: it is a copy or another machine's procfs", proc, boot, own), hostPathsFix)
	}
	fs, err := procfs.NewFS(proc)
	if err != nil {
		return fail(fmt.Sprintf("--path.procfs %s: %v", proc, err), hostPathsFix)
	}
	pid1 := "unknown"
	if p, err := fs.Proc(1); err == nil {
		if args, err := p.CmdLine(); err == nil && len(args) > 0 {
			pid1 = args[0]
		} else if comm, err := p.Comm(); err == nil {
			pid1 = comm
		}
	}
	kthreadd := false
	if p, err := fs.Proc(2); err == nil {
		if st, err := p.NewStatus(); err == nil {
			kthreadd = st.Name == "kthreadd"
		}
	}
	if !kthreadd {
		return fail(fmt.Sprintf("--path.procfs %s shows a PID namespace of its own, not the host's (PID 2 is not the kernel's kthreadd; PID 1 is %s): process counts and the pods' network (container_network_*) are not the host's", proc, pid1),
			"mount the host's /proc (hostPath /proc at /host/proc, --path.procfs=/host/proc), or run the pod with hostPID: true")
	}
	return okf("%s is the host's procfs: the running kernel's boot ID, the initial PID namespace (PID 1 is %s)", proc, pid1)
}

// checkSysFS: <sysfs> shows the host's network devices. A sysfs shows
// those of the network namespace it was mounted in: a pod's own /sys
// (without hostNetwork) shows the pod's eth0 and lo.
func checkSysFS(_ context.Context, d *doctor) outcome {
	sys := d.opts.SysFS
	entries, err := os.ReadDir(filepath.Join(sys, "class/net"))
	if err != nil {
		return fail(fmt.Sprintf("--path.sysfs %s is not a sysfs: %v", sys, err), hostPathsFix)
	}
	var seen []string
	for _, e := range entries {
		seen = append(seen, e.Name())
	}
	host, err := netDevices(filepath.Join(d.opts.ProcFS, "1"))
	if err != nil {
		return okf("%s is a sysfs with %d network devices (not compared with the host's network namespace: %v)", sys, len(seen), err)
	}
	if onlyIn, alsoIn := netDiff(seen, host); len(onlyIn)+len(alsoIn) > 0 {
		return fail(fmt.Sprintf("--path.sysfs %s shows the network devices %s, the host's network namespace has %s: it was mounted in a network namespace of its own (a pod's), so sysfs network series describe the pod", sys, list(seen), list(host)),
			"mount the host's /sys (hostPath /sys at /host/sys, --path.sysfs=/host/sys), or run the pod with hostNetwork: true")
	}
	return okf("%s is the host's sysfs: its %d network devices are those of the host's network namespace", sys, len(seen))
}

// checkNetwork: this process (and so the agent beside it in the pod, or
// on the host) runs in the host's network namespace: the agent's
// <procfs>/net files (netdev, netstat, sockstat, conntrack) are its own
// namespace's.
func checkNetwork(_ context.Context, d *doctor) outcome {
	self := filepath.Join(d.opts.SelfProc, "self")
	hostPID1 := filepath.Join(d.opts.ProcFS, "1")
	// The namespace links say it exactly, when this process may read
	// PID 1's (root, or CAP_SYS_PTRACE).
	if own, err := os.Readlink(filepath.Join(self, "ns/net")); err == nil {
		if host, err := os.Readlink(filepath.Join(hostPID1, "ns/net")); err == nil {
			if own == host {
				return okf("this process runs in the host's network namespace (%s)", own)
			}
			return fail(fmt.Sprintf("this process runs in network namespace %s, the host's is %s: node_network_*, node_netstat_* and node_sockstat_* would describe the pod", own, host), "run the pod with hostNetwork: true")
		}
	}
	own, err := netDevices(self)
	if err != nil {
		return warn(fmt.Sprintf("cannot tell the network namespace: %v", err), "")
	}
	host, err := netDevices(hostPID1)
	if err != nil {
		return warn(fmt.Sprintf("cannot read the host's network devices to compare: %v", err), "run doctor as root, or as the agent's user in its pod")
	}
	if onlyIn, alsoIn := netDiff(own, host); len(onlyIn)+len(alsoIn) > 0 {
		return fail(fmt.Sprintf("this process sees the network devices %s, the host's network namespace has %s: node_network_*, node_netstat_* and node_sockstat_* would describe the pod", list(own), list(host)), "run the pod with hostNetwork: true")
	}
	return okf("this process runs in the host's network namespace (the same %d network devices)", len(own))
}

// checkRootFS: <rootfs> is on the device the host's / is mounted from,
// as the host's PID 1 sees its mounts (readable without privileges, as
// node_exporter's filesystem collector reads them).
func checkRootFS(_ context.Context, d *doctor) outcome {
	root := d.opts.RootFS
	var st unix.Stat_t
	if err := unix.Stat(root, &st); err != nil {
		return fail(fmt.Sprintf("--path.rootfs %s: %v", root, err), hostPathsFix)
	}
	ns := mountNamespace(d)
	fs, err := procfs.NewFS(d.opts.ProcFS)
	var mounts []*procfs.MountInfo
	if err == nil {
		var p procfs.Proc
		if p, err = fs.Proc(1); err == nil {
			mounts, err = p.MountInfo()
		}
	}
	if err != nil {
		return warn(fmt.Sprintf("cannot read the host's mounts to compare --path.rootfs %s with: %v%s", root, err, ns), "see host.procfs")
	}
	var hostRoot *procfs.MountInfo
	for _, m := range mounts {
		if m.MountPoint == "/" {
			hostRoot = m // the last one listed is the one on top
		}
	}
	if hostRoot == nil {
		return warn(fmt.Sprintf("the host's PID 1 has no / in %s/1/mountinfo%s", d.opts.ProcFS, ns), "see host.procfs")
	}
	got := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	if got != hostRoot.MajorMinorVer {
		return fail(fmt.Sprintf("--path.rootfs %s is on device %s, the host's / is %s on %s: it is not the host's root filesystem (a container's own?)%s", root, got, hostRoot.FSType, hostRoot.MajorMinorVer, ns),
			"mount the host's / (hostPath / at /host/root, mountPropagation: HostToContainer) and give --path.rootfs=/host/root")
	}
	return okf("%s is the host's root filesystem (%s on %s)%s", root, hostRoot.FSType, hostRoot.MajorMinorVer, ns)
}

// mountNamespace says, when this process may read PID 1's namespace
// link, whether it runs in the host's mount namespace (bare metal) or a
// container's; else nothing.
func mountNamespace(d *doctor) string {
	own, err := os.Readlink(filepath.Join(d.opts.SelfProc, "self/ns/mnt"))
	if err != nil {
		return ""
	}
	host, err := os.Readlink(filepath.Join(d.opts.ProcFS, "1/ns/mnt"))
	if err != nil {
		return ""
	}
	if own == host {
		return "; this process runs in the host's mount namespace"
	}
	return "; this process runs in a mount namespace of its own (a container)"
}

// checkPSI: the kernel's pressure stall information, which node_pressure_*
// and container_pressure_* come from. A kernel built with PSI but booted
// without it has the files and refuses to read them.
func checkPSI(_ context.Context, d *doctor) outcome {
	dir := filepath.Join(d.opts.ProcFS, "pressure")
	var missing []string
	var firstErr error
	for _, res := range []string{"cpu", "memory", "io"} {
		if _, err := os.ReadFile(filepath.Join(dir, res)); err != nil {
			missing = append(missing, res)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if len(missing) > 0 {
		return warn(fmt.Sprintf("no pressure stall information for %s (%v): node_pressure_* and container_pressure_* are missing", strings.Join(missing, ", "), firstErr),
			"boot the kernel with psi=1 (kernels built with CONFIG_PSI_DEFAULT_DISABLED), or use a kernel with CONFIG_PSI")
	}
	return okf("pressure stall information for cpu, memory and io in %s", dir)
}

// netDevices lists the network devices in <proc dir>/net/dev (a PID's or
// self's: its network namespace's).
func netDevices(procDir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(procDir, "net/dev"))
	if err != nil {
		return nil, err
	}
	var names []string
	for line := range bytes.Lines(b) {
		name, _, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue // the two header lines
		}
		names = append(names, string(bytes.TrimSpace(name)))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s/net/dev lists no device", procDir)
	}
	slices.Sort(names)
	return names, nil
}

// netDiff returns the devices only in a and only in b, leaving out the
// pods' host-side devices (veth…, cali…, lxc…), which come and go between
// two reads.
func netDiff(a, b []string) (onlyA, onlyB []string) {
	churn := func(n string) bool {
		for _, p := range []string{"veth", "cali", "lxc", "vxlan", "tap", "tun"} {
			if strings.HasPrefix(n, p) {
				return true
			}
		}
		return false
	}
	for _, n := range a {
		if !slices.Contains(b, n) && !churn(n) {
			onlyA = append(onlyA, n)
		}
	}
	for _, n := range b {
		if !slices.Contains(a, n) && !churn(n) {
			onlyB = append(onlyB, n)
		}
	}
	return onlyA, onlyB
}

// list shows at most 8 names.
func list(names []string) string {
	if len(names) > 8 {
		return "[" + strings.Join(names[:8], " ") + fmt.Sprintf(" and %d more]", len(names)-8)
	}
	return "[" + strings.Join(names, " ") + "]"
}

func readTrim(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", errors.New(path + " is empty")
	}
	return s, nil
}
