package cadvisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/cgroup"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

// networkFamilies are cAdvisor's per-interface network counters. Like the
// kubelet, nodeagent serves a pod's network on its sandbox cgroup (the
// pod's containers share the sandbox's network namespace) and the host's
// on the root cgroup, from /proc/<pid>/net/dev of one process in the
// namespace.
func networkFamilies() []containerFamily {
	netFam := func(name, help string, value func(l *procfs.NetDevLine) uint64) containerFamily {
		return containerFamily{name: name, help: help, typ: counter, files: cgroup.Files(cgroup.FileCgroupProcs),
			emit: func(b *seriesBuf, s *cgState, _ *buildEnv) {
				if s.net == nil {
					return
				}
				for i := range s.net.ifaces {
					b.add(s.net.ifaces[i].labels, float64(value(&s.net.ifaces[i].line)))
				}
			}}
	}
	return []containerFamily{
		netFam("container_network_receive_bytes_total", "Cumulative count of bytes received", func(l *procfs.NetDevLine) uint64 { return l.RxBytes }),
		netFam("container_network_receive_packets_total", "Cumulative count of packets received", func(l *procfs.NetDevLine) uint64 { return l.RxPackets }),
		netFam("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving", func(l *procfs.NetDevLine) uint64 { return l.RxErrors }),
		netFam("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving", func(l *procfs.NetDevLine) uint64 { return l.RxDropped }),
		netFam("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted", func(l *procfs.NetDevLine) uint64 { return l.TxBytes }),
		netFam("container_network_transmit_packets_total", "Cumulative count of packets transmitted", func(l *procfs.NetDevLine) uint64 { return l.TxPackets }),
		netFam("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting", func(l *procfs.NetDevLine) uint64 { return l.TxErrors }),
		netFam("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting", func(l *procfs.NetDevLine) uint64 { return l.TxDropped }),
	}
}

// netSample is one cgroup's interfaces in this scrape, sorted by name.
type netSample struct {
	ifaces []netIface
}

type netIface struct {
	labels *exposition.LabelSet
	line   procfs.NetDevLine
}

// nsRead is one network namespace's /proc/<pid>/net/dev, read once per
// scrape however many cgroups share it (host-network pods share the
// root's).
type nsRead struct {
	pid  int
	proc procfs.Proc
	dev  procfs.NetDev
	err  error
}

// readNetwork reads the network of the root cgroup (pid 1) and of each
// sandbox (its first process), once per network namespace, in parallel.
// A process that exits meanwhile is skipped silently.
func (c *cadvisorCollector) readNetwork(ctx context.Context, served []*cgState) []error {
	if !c.network || c.proc == (procfs.FS{}) {
		return nil
	}
	byNS := map[string]*nsRead{}
	var reads []*nsRead
	owners := map[*cgState]*nsRead{}
	for _, s := range served {
		pid := 0
		switch {
		case s.entry.Kind == cgroup.KindRoot:
			pid = 1
		case s.id.sandbox && s.stats.Present.Has(cgroup.FileCgroupProcs):
			pid = s.stats.Procs.FirstPID
			if pid == 0 && s.stats.Procs.Hidden > 0 {
				// Its processes are outside the agent's PID namespace
				// (cgroup.procs lists them as 0): no /proc/<pid>/net/dev.
				c.logger.Debug("pod sandbox has no process in the agent's PID namespace (run with hostPID); its network series are left out",
					"cgroup", s.entry.Path)
			}
		}
		if pid <= 0 {
			continue
		}
		// A process does not change network namespace here (a sandbox's
		// pause, the host's init), so the namespace of a pid seen in the
		// previous scrape is not looked up again.
		key := s.netKey
		if pid != s.netPID || key == "" {
			var err error
			key, err = os.Readlink(filepath.Join(c.procPath, strconv.Itoa(pid), "ns", "net"))
			if err != nil {
				// No namespace link (the process exited, or a fixture
				// tree without one): read this pid's own view.
				key = "pid:" + strconv.Itoa(pid)
			}
			s.netPID, s.netKey, s.netProc = pid, key, procfs.Proc{}
		}
		r := byNS[key]
		if r == nil {
			r = &nsRead{pid: pid, proc: s.netProc}
			if r.proc.PID == 0 {
				// procfs' Proc (a pid and the mount) checks that
				// /proc/<pid> exists: a stat per pod and scrape that
				// keeping it saves. A pid that exits later fails to
				// open its net/dev instead, as it could before.
				r.proc, r.err = c.proc.Proc(pid)
				s.netProc = r.proc
			}
			byNS[key] = r
			reads = append(reads, r)
		}
		owners[s] = r
	}
	forEachParallel(ctx, len(reads), c.workers, func(_, i int) {
		if r := reads[i]; r.err == nil {
			r.dev, r.err = r.proc.NetDev()
		}
	})

	var errs []error
	for _, r := range reads {
		if r.err != nil && !errors.Is(r.err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("reading %s/%d/net/dev: %w", c.procPath, r.pid, r.err))
		}
	}
	for _, s := range served {
		r := owners[s]
		if r == nil || r.err != nil {
			continue
		}
		names := make([]string, 0, len(r.dev))
		for name := range r.dev {
			if utf8.ValidString(name) && (c.netExcludeRE == nil || !c.netExcludeRE.MatchString(name)) {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		ns := &netSample{ifaces: make([]netIface, len(names))}
		for i, name := range names {
			ns.ifaces[i] = netIface{labels: c.netLabelsFor(s.labels, name), line: r.dev[name]}
		}
		s.net = ns
	}
	return errs
}
