package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/collectors/internal/devicefilter"
	"github.com/nodeagent/nodeagent/collectors/internal/hostfile"
	"github.com/nodeagent/nodeagent/internal/exposition"
)

const (
	// defaultMountPointsExclude is node_exporter 1.12's default plus the
	// mounts a Kubernetes node has per pod and per container, as
	// kube-prometheus excludes them: every pod's volumes under
	// /var/lib/kubelet/pods/, and containerd's per-sandbox shm and rootfs
	// mounts under /run/containerd/ (and k3s' /run/k3s/containerd/). They
	// would add a few series per pod and churn with every pod start.
	defaultMountPointsExclude = `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+|var/lib/kubelet/pods/.+|run/containerd/.+|run/k3s/containerd/.+)($|/)`
	// defaultFSTypesExclude is node_exporter 1.12's default.
	defaultFSTypesExclude = `^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$`
	// stuckMountLabel is node_exporter's device_error label value for a
	// mount skipped because statfs did not answer.
	stuckMountLabel = "mountpoint timeout"
)

// filesystemConfig holds the filesystem collector's flags.
type filesystemConfig struct {
	mountPoints, fsTypes *devicefilter.Flags
	mountTimeout         time.Duration
	statWorkers          int
}

func init() {
	collectors.Register(collectors.Registration{
		Name:           "filesystem",
		Layer:          collectors.LayerNode,
		DefaultEnabled: true,
		Setup: func(app collectors.FlagApp) collectors.Factory {
			cfg := &filesystemConfig{}
			cfg.mountPoints = devicefilter.AddFlags(app,
				"collector.filesystem.mount-points-exclude", defaultMountPointsExclude,
				"Regexp of mount points to exclude for filesystem collector (mutually exclusive to mount-points-include). The default adds Kubernetes pod volumes and containerd's per-container mounts to node_exporter's.",
				"collector.filesystem.mount-points-include",
				"Regexp of mount points to include for filesystem collector (mutually exclusive to mount-points-exclude).")
			cfg.fsTypes = devicefilter.AddFlags(app,
				"collector.filesystem.fs-types-exclude", defaultFSTypesExclude,
				"Regexp of filesystem types to exclude for filesystem collector (mutually exclusive to fs-types-include).",
				"collector.filesystem.fs-types-include",
				"Regexp of filesystem types to include for filesystem collector (mutually exclusive to fs-types-exclude).")
			app.Flag("collector.filesystem.mount-timeout",
				"How long to wait for statfs on a mount before marking it stuck; a stuck mount is skipped until its statfs answers.").
				Default("5s").DurationVar(&cfg.mountTimeout)
			app.Flag("collector.filesystem.stat-workers", "How many statfs calls to run at once.").
				Default("4").IntVar(&cfg.statWorkers)
			return func(env collectors.Env) (collectors.Collector, error) {
				return newFilesystemCollector(env, *cfg, kernelStatfs{})
			}
		},
	})
}

// statfser answers statfs(2) for a path. The kernel's may block for as long
// as a hard NFS mount's server is away; the collector never waits for it
// longer than the mount timeout. Tests replace it with a fake they control.
type statfser interface {
	Statfs(path string, buf *syscall.Statfs_t) error
}

type kernelStatfs struct{}

func (kernelStatfs) Statfs(path string, buf *syscall.Statfs_t) error {
	return syscall.Statfs(path, buf)
}

// filesystemCollector serves statfs of every mount in PID 1's mount table,
// as node_exporter's filesystem collector does, with its stuck-mount
// protection done right: the state lives here behind a lock (node_exporter
// keeps it in package globals and races), a scrape never waits on a stuck
// mount (node_exporter's first scrape blocks until statfs returns), and at
// most one goroutine per mount is ever blocked in statfs.
type filesystemCollector struct {
	proc                  procfs.FS
	procPath, rootfs      string
	logger                *slog.Logger
	statfs                statfser
	mountPoints, fsTypes  devicefilter.Filter
	mountTimeout          time.Duration
	workers               int
	size, free, avail     *collectors.CompactDesc
	files, filesFree      *collectors.CompactDesc
	purgeable             *collectors.CompactDesc
	readonly, deviceError *collectors.CompactDesc
	mountInfo             *collectors.CompactDesc

	// mu guards inflight: the statfs call outstanding per path. A call is
	// started by the first scrape that needs it and joined by later ones
	// until it returns; its goroutine removes it then. That goroutine is the
	// background check of a stuck mount: when it answers, the next scrape
	// asks afresh.
	mu       sync.Mutex
	inflight map[string]*statfsCall

	// The mount table is read every scrape through kept descriptors and
	// parsed (procfs' GetProcMounts, ~300 allocations on a small host)
	// only when its content differs from the last one parsed; labels are
	// the label sets of the last scrape's mounts, by series key.
	mountsMu               sync.Mutex
	pid1Mounts, selfMounts *hostfile.ProcFile
	mountsRaw              []byte // content mountsParsed was parsed from; nil when none
	mountsPath             string
	mountsParsed           []mount
	labels                 map[seriesKey]*exposition.LabelSet
	infoLabels             map[mount]*exposition.LabelSet
}

// seriesKey tells a mount's series apart: a filesystem mounted twice at
// one place is served once.
type seriesKey struct{ device, mountPoint, fsType, deviceError string }

// statfsCall is one outstanding statfs. buf and err are written before
// done is closed and read only after.
type statfsCall struct {
	started time.Time
	done    chan struct{}
	buf     syscall.Statfs_t
	err     error
	stuck   bool // a scrape gave up waiting; guarded by filesystemCollector.mu
}

func newFilesystemCollector(env collectors.Env, cfg filesystemConfig, statfs statfser) (*filesystemCollector, error) {
	mp, err := cfg.mountPoints.Build("collector.filesystem.mount-points-exclude", "collector.filesystem.mount-points-include")
	if err != nil {
		return nil, err
	}
	ft, err := cfg.fsTypes.Build("collector.filesystem.fs-types-exclude", "collector.filesystem.fs-types-include")
	if err != nil {
		return nil, err
	}
	if cfg.mountTimeout <= 0 {
		return nil, fmt.Errorf("--collector.filesystem.mount-timeout must be positive, got %s", cfg.mountTimeout)
	}
	labels := []string{"device", "mountpoint", "fstype", "device_error"}
	return &filesystemCollector{
		proc:         env.Proc,
		procPath:     env.Paths.ProcFS,
		rootfs:       env.Paths.RootFS,
		logger:       env.Logger,
		statfs:       statfs,
		mountPoints:  mp,
		fsTypes:      ft,
		mountTimeout: cfg.mountTimeout,
		workers:      max(cfg.statWorkers, 1),
		inflight:     map[string]*statfsCall{},
		pid1Mounts:   hostfile.NewProcFile(filepath.Join(env.Paths.ProcFS, "1", "mountinfo")),
		selfMounts:   hostfile.NewProcFile(filepath.Join(env.Paths.ProcFS, "self", "mountinfo")),
		size:         collectors.NewCompactDesc("node_filesystem_size_bytes", "Filesystem size in bytes.", dto.MetricType_GAUGE, labels...),
		free:         collectors.NewCompactDesc("node_filesystem_free_bytes", "Filesystem free space in bytes.", dto.MetricType_GAUGE, labels...),
		avail:        collectors.NewCompactDesc("node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes.", dto.MetricType_GAUGE, labels...),
		files:        collectors.NewCompactDesc("node_filesystem_files", "Filesystem total file nodes.", dto.MetricType_GAUGE, labels...),
		filesFree:    collectors.NewCompactDesc("node_filesystem_files_free", "Filesystem total free file nodes.", dto.MetricType_GAUGE, labels...),
		purgeable:    collectors.NewCompactDesc("node_filesystem_purgeable_bytes", "Filesystem space available including purgeable space (MacOS specific).", dto.MetricType_GAUGE, labels...),
		readonly:     collectors.NewCompactDesc("node_filesystem_readonly", "Filesystem read-only status.", dto.MetricType_GAUGE, labels...),
		deviceError:  collectors.NewCompactDesc("node_filesystem_device_error", "Whether an error occurred while getting statistics for the given device.", dto.MetricType_GAUGE, labels...),
		mountInfo:    collectors.NewCompactDesc("node_filesystem_mount_info", "Filesystem mount information.", dto.MetricType_GAUGE, "device", "major", "minor", "mountpoint"),
	}, nil
}

// mount is one mount table entry as labelled.
type mount struct {
	device, mountPoint, fsType, major, minor string
	readonly                                 bool
}

// mountStats is the outcome of one mount's statfs.
type mountStats struct {
	mount
	buf         syscall.Statfs_t
	deviceError string // "" when statfs answered
}

func (c *filesystemCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return collectors.SendCompact(ctx, ch, c.UpdateCompact)
}

// UpdateCompact serves the mounts' families in compact form.
func (c *filesystemCollector) UpdateCompact(ctx context.Context) ([]*exposition.CompactFamily, error) {
	var b collectors.CompactBuilder
	mounts, err := c.mounts()
	if err != nil {
		return b.Families(), err
	}
	var todo []mount
	for _, m := range mounts {
		switch {
		case c.mountPoints.Ignored(m.mountPoint):
			c.logger.Debug("Ignoring mount point", "mountpoint", m.mountPoint)
		case c.fsTypes.Ignored(m.fsType):
			c.logger.Debug("Ignoring fs type", "type", m.fsType)
		default:
			todo = append(todo, m)
		}
	}
	stats, err := c.statAll(ctx, todo)
	if err != nil {
		return b.Families(), err
	}
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	// This scrape's label sets, those of the last scrape's mounts reused:
	// the mounts of a node change seldom.
	labels := make(map[seriesKey]*exposition.LabelSet, len(stats))
	infoLabels := make(map[mount]*exposition.LabelSet, len(stats))
	defer func() { c.labels, c.infoLabels = labels, infoLabels }()
	for _, s := range stats {
		k := seriesKey{s.device, s.mountPoint, s.fsType, s.deviceError}
		if labels[k] != nil {
			continue // the same filesystem mounted twice at one place
		}
		// One label set for the mount's eight series.
		ls := c.labels[k]
		if ls == nil {
			ls = collectors.LabelSet("device", s.device, "mountpoint", s.mountPoint, "fstype", s.fsType, "device_error", s.deviceError)
		}
		labels[k] = ls
		errVal, roVal := 0.0, 0.0
		if s.deviceError != "" {
			errVal = 1
		}
		if s.readonly {
			roVal = 1
		}
		b.AddLabels(c.deviceError, errVal, ls)
		b.AddLabels(c.readonly, roVal, ls)
		if s.deviceError != "" {
			continue
		}
		bsize := float64(s.buf.Bsize)
		b.AddLabels(c.size, float64(s.buf.Blocks)*bsize, ls)
		b.AddLabels(c.free, float64(s.buf.Bfree)*bsize, ls)
		b.AddLabels(c.avail, float64(s.buf.Bavail)*bsize, ls)
		b.AddLabels(c.files, float64(s.buf.Files), ls)
		b.AddLabels(c.filesFree, float64(s.buf.Ffree), ls)
		// node_exporter 1.12 serves this macOS figure as 0 on Linux too;
		// served the same so that the two expositions are identical.
		b.AddLabels(c.purgeable, 0, ls)
		info := mount{device: s.device, major: s.major, minor: s.minor, mountPoint: s.mountPoint}
		if infoLabels[info] == nil {
			ls := c.infoLabels[info]
			if ls == nil {
				ls = collectors.LabelSet("device", s.device, "major", s.major, "minor", s.minor, "mountpoint", s.mountPoint)
			}
			infoLabels[info] = ls
			b.AddLabels(c.mountInfo, 1, ls)
		}
	}
	return b.Families(), nil
}

// mounts reads PID 1's mount table, as node_exporter does (in a container
// with the host's PID namespace that is the host's), falling back to the
// agent's own when PID 1 is hidden (hidepid).
//
// The table is parsed anew only when its content changed since the last
// scrape (a mount added or removed); otherwise the last parse is returned,
// which the caller must not modify.
func (c *filesystemCollector) mounts() ([]mount, error) {
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	out, err := c.mountsOf(c.pid1Mounts, func() ([]*procfs.MountInfo, error) { return c.proc.GetProcMounts(1) })
	if errors.Is(err, fs.ErrNotExist) {
		c.logger.Debug("Reading root mounts failed, falling back to self mounts", "err", err)
		out, err = c.mountsOf(c.selfMounts, c.proc.GetMounts)
	}
	return out, err
}

// mountsOf returns the mounts of the table file, parsed by parse when the
// file's content is not the one parsed last. The content is read before
// parse reads the file again, so that a change between the two reads
// makes the next scrape parse again rather than keep a stale table.
func (c *filesystemCollector) mountsOf(file *hostfile.ProcFile, parse func() ([]*procfs.MountInfo, error)) ([]mount, error) {
	var raw []byte
	same := false
	if err := file.ReadFunc(func(b []byte) error {
		same = c.mountsRaw != nil && c.mountsPath == file.Path() && hostfile.Whole(b) && bytes.Equal(b, c.mountsRaw)
		if !same && hostfile.Whole(b) {
			raw = append([]byte(nil), b...)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if same {
		return c.mountsParsed, nil
	}
	out, err := c.parseMounts(file.Path(), parse)
	if err != nil {
		return nil, err
	}
	c.mountsRaw, c.mountsPath, c.mountsParsed = raw, file.Path(), out
	return out, nil
}

// parseMounts turns the table procfs parsed from path into mounts.
func (c *filesystemCollector) parseMounts(path string, parse func() ([]*procfs.MountInfo, error)) ([]mount, error) {
	infos, err := parse()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	out := make([]mount, 0, len(infos))
	for _, mi := range infos {
		major, minor, ok := parseMajorMinor(mi.MajorMinorVer)
		if !ok {
			return nil, fmt.Errorf("reading %s: malformed major:minor %q of mount point %s", path, mi.MajorMinorVer, mi.MountPoint)
		}
		// The kernel escapes space and tab in mount points (fstab(5)).
		mp := strings.ReplaceAll(mi.MountPoint, `\040`, " ")
		mp = strings.ReplaceAll(mp, `\011`, "\t")
		_, ro := mi.Options["ro"]
		_, superRO := mi.SuperOptions["ro"]
		_, emergencyRO := mi.SuperOptions["emergency_ro"]
		out = append(out, mount{
			device:     hostfile.ValidLabel(mi.Source),
			mountPoint: hostfile.ValidLabel(c.stripRootfs(mp)),
			fsType:     hostfile.ValidLabel(mi.FSType),
			major:      major,
			minor:      minor,
			readonly:   ro || superRO || emergencyRO,
		})
	}
	return out, nil
}

// parseMajorMinor splits "8:1" into canonical decimal strings.
func parseMajorMinor(s string) (major, minor string, ok bool) {
	a, b, found := strings.Cut(s, ":")
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	if !found || err1 != nil || err2 != nil {
		return "", "", false
	}
	return strconv.Itoa(ma), strconv.Itoa(mi), true
}

// stripRootfs turns a mount point seen from inside a container whose host
// root is mounted at --path.rootfs back into the host's path.
func (c *filesystemCollector) stripRootfs(mp string) string {
	if c.rootfs == "/" || c.rootfs == "" {
		return mp
	}
	stripped := strings.TrimPrefix(mp, c.rootfs)
	if stripped == "" {
		return "/"
	}
	return stripped
}

// statAll runs statfs for every mount on a bounded pool of workers and
// returns the outcomes in mount order. It gives up on a mount at its
// timeout or shortly before ctx's deadline, whichever comes first, so the
// scrape is answered in time.
func (c *filesystemCollector) statAll(ctx context.Context, mounts []mount) ([]mountStats, error) {
	budget := time.Time{}
	if dl, ok := ctx.Deadline(); ok {
		// Leave a tenth of the remaining time (at most 500ms) for the rest
		// of the scrape.
		budget = dl.Add(-min(500*time.Millisecond, time.Until(dl)/10))
	}
	out := make([]mountStats, len(mounts))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(c.workers, len(mounts)) {
		wg.Go(func() {
			for i := range next {
				out[i] = c.stat(mounts[i], budget)
			}
		})
	}
	var err error
feed:
	for i := range mounts {
		select {
		case next <- i:
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	return out, err
}

// stat answers one mount: from its statfs if that returns in time, else
// as stuck. A mount already known stuck is not waited for at all.
func (c *filesystemCollector) stat(m mount, budget time.Time) mountStats {
	path := filepath.Join(c.rootfs, m.mountPoint)
	c.mu.Lock()
	call, ok := c.inflight[path]
	if !ok {
		call = &statfsCall{started: time.Now(), done: make(chan struct{})}
		c.inflight[path] = call
		go c.run(path, call)
	}
	stuck := call.stuck
	c.mu.Unlock()

	if !stuck {
		until := call.started.Add(c.mountTimeout)
		if !budget.IsZero() && budget.Before(until) {
			until = budget
		}
		t := time.NewTimer(time.Until(until))
		select {
		case <-call.done:
		case <-t.C:
		}
		t.Stop()
	}
	select {
	case <-call.done:
		s := mountStats{mount: m, buf: call.buf}
		if call.err != nil {
			s.deviceError = call.err.Error()
			c.logger.Debug("Error on statfs() system call", "rootfs", path, "err", call.err)
		}
		return s
	default:
	}
	c.mu.Lock()
	if !call.stuck {
		call.stuck = true
		c.logger.Warn("statfs did not answer; mount point marked stuck and skipped until it answers",
			"mountpoint", m.mountPoint, "path", path, "waited", time.Since(call.started).Round(time.Millisecond))
	}
	c.mu.Unlock()
	return mountStats{mount: m, deviceError: stuckMountLabel}
}

// run is the one goroutine that calls statfs on path; it may block for as
// long as the mount does.
func (c *filesystemCollector) run(path string, call *statfsCall) {
	call.err = c.statfs.Statfs(path, &call.buf)
	c.mu.Lock()
	if c.inflight[path] == call {
		delete(c.inflight, path)
	}
	wasStuck := call.stuck
	c.mu.Unlock()
	close(call.done)
	if wasStuck {
		c.logger.Info("stuck mount point answers again; monitoring resumes", "path", path,
			"after", time.Since(call.started).Round(time.Millisecond))
	}
}
