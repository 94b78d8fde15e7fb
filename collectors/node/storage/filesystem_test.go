package storage

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/testlog"

	"github.com/alecthomas/kingpin/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// Golden cases: testdata/filesystem (good, kubernetes-defaults, include,
// hidepid, malformed) run the kernel's statfs over symlinks to /proc and
// /sys; the tests here drive a fake statfs.

// fakeStatfs answers statfs per mount point (the path less the rootfs) and
// blocks on a mount's gate while it is set.
type fakeStatfs struct {
	rootfs string

	mu         sync.Mutex
	answers    map[string]syscall.Statfs_t
	errs       map[string]error
	gates      map[string]chan struct{}
	calls      map[string]int
	blocked    map[string]int
	maxBlocked int
}

func newFakeStatfs(rootfs string) *fakeStatfs {
	return &fakeStatfs{
		rootfs:  rootfs,
		answers: map[string]syscall.Statfs_t{},
		errs:    map[string]error{},
		gates:   map[string]chan struct{}{},
		calls:   map[string]int{},
		blocked: map[string]int{},
	}
}

func (f *fakeStatfs) Statfs(path string, buf *syscall.Statfs_t) error {
	mp := "/" + strings.TrimPrefix(strings.TrimPrefix(path, f.rootfs), "/")
	f.mu.Lock()
	f.calls[mp]++
	gate := f.gates[mp]
	if gate != nil {
		f.blocked[mp]++
		f.maxBlocked = max(f.maxBlocked, f.blocked[mp])
	}
	f.mu.Unlock()
	if gate != nil {
		<-gate
		f.mu.Lock()
		f.blocked[mp]--
		f.mu.Unlock()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err, ok := f.errs[mp]; ok {
		return err
	}
	a, ok := f.answers[mp]
	if !ok {
		return syscall.ENOENT
	}
	*buf = a
	return nil
}

func (f *fakeStatfs) callCount(mp string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[mp]
}

// newMountTree writes a mount table at rel below a new tree and returns the
// tree and a fake statfs for its rootfs.
func newMountTree(t *testing.T, rel, mountinfo string) (string, *fakeStatfs) {
	t.Helper()
	root := t.TempDir()
	collectortest.WriteFiles(t, root, map[string]string{rel: mountinfo})
	return root, newFakeStatfs(filepath.Join(root, "root"))
}

// newTestFilesystemCollector builds the collector over root with the given
// flags, as the binary would, but with statfs answered by fake.
func newTestFilesystemCollector(t *testing.T, root string, fake *fakeStatfs, args ...string) *filesystemCollector {
	t.Helper()
	app := kingpin.New("test", "")
	factory := collectortest.Lookup(t, "filesystem").Setup(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatal(err)
	}
	// The factory builds with the kernel's statfs; swap in the fake before
	// the first scrape.
	c, err := factory(collectortest.TempEnv(t, root))
	if err != nil {
		t.Fatal(err)
	}
	fc := c.(*filesystemCollector)
	fc.statfs = fake
	return fc
}

const testMountinfo = `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
40 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
41 40 259:1 / /boot/efi rw,relatime shared:2 - vfat /dev/nvme0n1p1 rw
42 40 8:1 / /srv ro,relatime shared:3 - ext4 /dev/sda1 rw
43 40 8:1 / /srv ro,relatime shared:3 - ext4 /dev/sda1 rw
44 40 253:0 / /var/lib/containerd rw,relatime shared:4 - xfs /dev/mapper/vg0-data rw
45 40 0:50 / /mnt/nfs rw,relatime shared:5 - nfs4 10.0.0.5:/export rw,vers=4.2,hard
46 40 0:51 / /mnt/broken rw,relatime shared:6 - ext4 /dev/sdc1 rw,emergency_ro
`

func TestFilesystemStatfsValues(t *testing.T) {
	t.Parallel()
	root, fake := newMountTree(t, "proc/1/mountinfo", testMountinfo)
	fake.answers["/"] = syscall.Statfs_t{Bsize: 4096, Blocks: 1000, Bfree: 400, Bavail: 300, Files: 5000, Ffree: 4000}
	fake.answers["/boot/efi"] = syscall.Statfs_t{Bsize: 512, Blocks: 100, Bfree: 90, Bavail: 90, Files: 0, Ffree: 0}
	fake.answers["/srv"] = syscall.Statfs_t{Bsize: 1024, Blocks: 10, Bfree: 1, Bavail: 1, Files: 7, Ffree: 2}
	fake.answers["/var/lib/containerd"] = syscall.Statfs_t{Bsize: 4096, Blocks: 3, Bfree: 2, Bavail: 1, Files: 9, Ffree: 8}
	fake.errs["/mnt/nfs"] = syscall.ESTALE
	fake.errs["/mnt/broken"] = syscall.EIO
	c := newTestFilesystemCollector(t, root, fake)

	got, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "filesystem", "fake-statfs.prom")
	if collectortest.Updating() {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := collectortest.ReadFile(t, golden)
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFilesystemRootfsPrefix: when PID 1's mounts are hidden (hidepid) the
// agent's own are read, where the host's mounts sit below --path.rootfs;
// the label is the host's path, statfs goes below the rootfs.
func TestFilesystemRootfsPrefix(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	rootfs := filepath.Join(root, "root")
	collectortest.WriteFiles(t, root, map[string]string{"proc/self/mountinfo": "1 0 259:2 / " + rootfs + " rw - ext4 /dev/nvme0n1p2 rw\n" +
		"2 1 259:3 / " + rootfs + "/data rw - ext4 /dev/nvme0n1p3 rw\n"})
	fake := newFakeStatfs(rootfs)
	fake.answers["/"] = syscall.Statfs_t{Bsize: 1, Blocks: 1}
	fake.answers["/data"] = syscall.Statfs_t{Bsize: 1, Blocks: 2}
	c := newTestFilesystemCollector(t, root, fake)
	lines, err := collectortest.SeriesLines(t, c, "node_filesystem_size_bytes")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`node_filesystem_size_bytes{device="/dev/nvme0n1p2",device_error="",fstype="ext4",mountpoint="/"} 1`,
		`node_filesystem_size_bytes{device="/dev/nvme0n1p3",device_error="",fstype="ext4",mountpoint="/data"} 2`,
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestFilesystemStuckMount is the stale-NFS story: a statfs that blocks
// does not hold up the scrape, later scrapes skip the mount without
// calling statfs again (one blocked goroutine per mount, ever), and the
// mount comes back once its statfs answers.
func TestFilesystemStuckMount(t *testing.T) {
	t.Parallel()
	root, fake := newMountTree(t, "proc/1/mountinfo", testMountinfo)
	fake.answers["/"] = syscall.Statfs_t{Bsize: 4096, Blocks: 1000, Bfree: 400, Bavail: 300}
	fake.answers["/mnt/nfs"] = syscall.Statfs_t{Bsize: 4096, Blocks: 50, Bfree: 20, Bavail: 10}
	gate := make(chan struct{})
	fake.gates["/mnt/nfs"] = gate
	// Long enough that the answering mount is never late, even on a loaded
	// machine; the gated one blocks regardless.
	c := newTestFilesystemCollector(t, root, fake, "--collector.filesystem.mount-timeout=1s")
	c.logger = (&testlog.Buffer{}).Logger() // the statfs goroutine may log after the test
	s, err := collectors.NewScraper([]collectors.Instance{{Name: "filesystem", Layer: collectors.LayerNode, Collector: c}},
		collectors.ScraperOptions{Timeout: 30 * time.Second, MaxConcurrency: 1, Logger: collectortest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	nfs := `{device=10.0.0.5:/export,device_error=mountpoint timeout,fstype=nfs4,mountpoint=/mnt/nfs}`
	nfsOK := `{device=10.0.0.5:/export,device_error=,fstype=nfs4,mountpoint=/mnt/nfs}`
	rootOK := `{device=/dev/nvme0n1p2,device_error=,fstype=ext4,mountpoint=/}`
	scrape := func() map[string]float64 {
		t.Helper()
		mfs, err := s.Gather(time.Now().Add(30*time.Second), []string{"filesystem"})
		if err != nil {
			t.Fatal(err)
		}
		return collectortest.Values(mfs)
	}

	for i := range 3 {
		v := scrape()
		if v["nodeagent_scrape_collector_success{collector=filesystem}"] != 1 {
			t.Fatalf("scrape %d: filesystem collector failed", i)
		}
		if v["node_filesystem_device_error"+nfs] != 1 {
			t.Errorf("scrape %d: the blocked NFS mount is not reported stuck: %v", i, v)
		}
		if _, ok := v["node_filesystem_size_bytes"+nfsOK]; ok {
			t.Errorf("scrape %d: the blocked NFS mount has a size", i)
		}
		if v["node_filesystem_avail_bytes"+rootOK] != 300*4096 {
			t.Errorf("scrape %d: / is not served alongside the stuck mount", i)
		}
	}
	if n := fake.callCount("/mnt/nfs"); n != 1 {
		t.Errorf("statfs called %d times on the stuck mount over 3 scrapes; want 1", n)
	}

	close(gate)
	collectortest.WaitFor(t, func() bool {
		return scrape()["node_filesystem_avail_bytes"+nfsOK] == 10*4096
	})
	v := scrape()
	if _, ok := v["node_filesystem_device_error"+nfs]; ok {
		t.Error("the recovered mount is still reported stuck")
	}
	fake.mu.Lock()
	defer fake.mu.Unlock()
	if fake.maxBlocked != 1 {
		t.Errorf("at most %d goroutines were blocked on the stuck mount at once; want 1", fake.maxBlocked)
	}
}

// TestFilesystemAnswersBeforeDeadline: with a mount timeout longer than the
// collector's deadline (--scrape.timeout), the collector still returns in
// time, reporting the blocked mount stuck, rather than being dropped whole
// by the Scraper.
func TestFilesystemAnswersBeforeDeadline(t *testing.T) {
	t.Parallel()
	root, fake := newMountTree(t, "proc/1/mountinfo", testMountinfo)
	fake.answers["/"] = syscall.Statfs_t{Bsize: 4096, Blocks: 1000}
	gate := make(chan struct{})
	defer close(gate)
	fake.gates["/mnt/nfs"] = gate
	c := newTestFilesystemCollector(t, root, fake, "--collector.filesystem.mount-timeout=1h")
	c.logger = (&testlog.Buffer{}).Logger() // the statfs goroutine logs after the test
	s, err := collectors.NewScraper([]collectors.Instance{{Name: "filesystem", Layer: collectors.LayerNode, Collector: c}},
		collectors.ScraperOptions{Timeout: 2 * time.Second, MaxConcurrency: 1, Logger: collectortest.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	mfs, err := s.Gather(time.Now().Add(time.Minute), []string{"filesystem"})
	if err != nil {
		t.Fatal(err)
	}
	v := collectortest.Values(mfs)
	if v["nodeagent_scrape_collector_success{collector=filesystem}"] != 1 {
		t.Fatal("the filesystem collector missed the scrape deadline")
	}
	if v["node_filesystem_device_error{device=10.0.0.5:/export,device_error=mountpoint timeout,fstype=nfs4,mountpoint=/mnt/nfs}"] != 1 {
		t.Errorf("the blocked mount is not reported stuck: %v", v)
	}
}

// The include flag alone replaces the default exclude, as node_exporter's.
func TestFilesystemIncludeReplacesDefaultExclude(t *testing.T) {
	t.Parallel()
	root, fake := newMountTree(t, "proc/1/mountinfo", testMountinfo)
	c := newTestFilesystemCollector(t, root, fake, "--collector.filesystem.mount-points-include=^/sys$", "--collector.filesystem.fs-types-exclude=^$")
	lines, err := collectortest.SeriesLines(t, c, "node_filesystem_device_error")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 || !strings.Contains(lines[0], `mountpoint="/sys"`) {
		t.Errorf("want only /sys, got %v", lines)
	}
}

// The mount table is parsed again only when its content changed: an
// unchanged table gives back the last parse, a mount added or removed is
// served on the next scrape.
func TestFilesystemMountTableReparsedOnChange(t *testing.T) {
	t.Parallel()
	root, fake := newMountTree(t, "proc/1/mountinfo", testMountinfo)
	c := newTestFilesystemCollector(t, root, fake)
	first, err := c.mounts()
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.mounts()
	if err != nil {
		t.Fatal(err)
	}
	if len(first) == 0 || &first[0] != &again[0] {
		t.Error("an unchanged mount table was parsed again")
	}
	path := filepath.Join(root, "proc", "1", "mountinfo")
	for _, tc := range []struct {
		name, table, want string
		served            bool
	}{
		{"added", testMountinfo + "47 40 8:33 / /mnt/added rw,relatime shared:9 - ext4 /dev/sdd1 rw\n", "/mnt/added", true},
		{"removed", strings.Replace(testMountinfo, "44 40 253:0 / /var/lib/containerd rw,relatime shared:4 - xfs /dev/mapper/vg0-data rw\n", "", 1), "/var/lib/containerd", false},
	} {
		if err := os.WriteFile(path, []byte(tc.table), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := collectortest.Exposition(t, c)
		if err != nil {
			t.Fatal(err)
		}
		if served := strings.Contains(string(got), `mountpoint="`+tc.want+`"`); served != tc.served {
			t.Errorf("%s: %s served %v, want %v", tc.name, tc.want, served, tc.served)
		}
	}
}
