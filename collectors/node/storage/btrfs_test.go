package storage

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/nodeagent/nodeagent/collectors"
	"github.com/nodeagent/nodeagent/internal/collectortest"
)

// The sysfs cases (three filesystems: single/dup, raid5/raid1c3 with
// symlinked devices, a 5.x kernel without commit_stats mid-conversion;
// none; one malformed commit_stats) are golden cases in testdata/btrfs. In
// those, node_exporter and nodeagent both find the fixture's mounts
// unopenable and fall back to sysfs device sizes. The ioctl branch is
// tested here.

// fakeBtrfsIoctl answers per mount path.
type fakeBtrfsIoctl struct {
	byPath map[string]fakeBtrfsFS
	asked  []string
}

type fakeBtrfsFS struct {
	fsid string
	devs []btrfsIoctlDevice
	err  error
}

func (f *fakeBtrfsIoctl) devices(mountPath string) (string, []btrfsIoctlDevice, error) {
	f.asked = append(f.asked, mountPath)
	r, ok := f.byPath[mountPath]
	if !ok {
		return "", nil, syscall.ENOENT
	}
	return r.fsid, r.devs, r.err
}

func TestBtrfsIoctlDevices(t *testing.T) {
	t.Parallel()
	env := collectortest.Env(t, filepath.Join("testdata", "btrfs/good"))
	root := env.Paths.RootFS
	fake := &fakeBtrfsIoctl{byPath: map[string]fakeBtrfsFS{
		root: {fsid: "0abb23a9579b43e6ad30227ef47fcb9d", devs: []btrfsIoctlDevice{
			{path: "/dev/vda2", uuid: "5d2b8a3e-7a1c-4f0e-9b2d-1c3e5f7a9b0d", bytesUsed: 21 << 30, totalBytes: 50 << 30},
		}},
		root + "/var/lib/kubelet": {fsid: "7f07c59f6136449cab87e1cf2328731b", devs: []btrfsIoctlDevice{
			{path: "/dev/vdb", uuid: "0c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5", bytesUsed: 43 << 30, totalBytes: 100 << 30},
			{path: "/dev/vdc", uuid: "1c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5", bytesUsed: 43 << 30, totalBytes: 100 << 30,
				errs: [5]uint64{3, 17, 0, 2, 1}},
			{path: "/dev/vdd", uuid: "2c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5", bytesUsed: 42 << 30, totalBytes: 100 << 30},
		}},
		// The backup disk's mount point has an escaped space; the ioctl
		// is refused there (no CAP_SYS_ADMIN), so its devices come from sysfs.
		root + "/mnt/backup disk": {err: syscall.EPERM},
	}}
	c := newBtrfsCollector(env, fake)
	collectortest.CompareCollectorGolden(t, c, filepath.Join("testdata", "btrfs/ioctl.prom"))
	// /var/lib/containerd is the same filesystem as /var/lib/kubelet
	// (same source): asked once.
	want := []string{root, root + "/var/lib/kubelet", root + "/mnt/backup disk"}
	if diff := cmp.Diff(want, fake.asked); diff != "" {
		t.Errorf("mounts asked (-want +got):\n%s", diff)
	}
}

func TestBtrfsHostPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ rootfs, mount, want string }{
		{"/", "/var/lib/kubelet", "/var/lib/kubelet"},
		{"/host", "/var/lib/kubelet", "/host/var/lib/kubelet"},
		{"/host", "/", "/host"},
		{"/host", "/host/data", "/host/data"}, // already below rootfs
		{"/", `/mnt/a\040b\011c`, "/mnt/a b\tc"},
	} {
		c := &btrfsCollector{rootfs: tc.rootfs}
		if got := c.hostPath(tc.mount); got != tc.want {
			t.Errorf("rootfs %s, mount %q: got %q, want %q", tc.rootfs, tc.mount, got, tc.want)
		}
	}
}

func TestDecodeBtrfsDevice(t *testing.T) {
	t.Parallel()
	info := make([]byte, btrfsFsInfoSize)
	binary.NativeEndian.PutUint64(info[0:8], 3)
	binary.NativeEndian.PutUint64(info[8:16], 2)
	fsid, _ := hex.DecodeString("7f07c59f6136449cab87e1cf2328731b")
	copy(info[16:32], fsid)
	maxID, n, gotFSID := decodeBtrfsFsInfo(info)
	if maxID != 3 || n != 2 || gotFSID != "7f07c59f6136449cab87e1cf2328731b" {
		t.Errorf("fs info: max_id %d, num_devices %d, fsid %s", maxID, n, gotFSID)
	}

	devInfo := make([]byte, btrfsDevInfoSize)
	binary.NativeEndian.PutUint64(devInfo[0:8], 2)
	uuid, _ := hex.DecodeString("0c1d2e3f4a5b4c6d8e9fa0b1c2d3e4f5")
	copy(devInfo[8:24], uuid)
	binary.NativeEndian.PutUint64(devInfo[24:32], 1000)
	binary.NativeEndian.PutUint64(devInfo[32:40], 5000)
	copy(devInfo[3072:], "/dev/mapper/crypt-data")
	stats := make([]byte, btrfsGetDevStatsSize)
	binary.NativeEndian.PutUint64(stats[8:16], btrfsDevStatValues)
	for i := range 5 {
		binary.NativeEndian.PutUint64(stats[24+8*i:], uint64(10+i))
	}
	got := decodeBtrfsDevice(devInfo, stats)
	want := btrfsIoctlDevice{
		path: "/dev/mapper/crypt-data", uuid: "0c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5",
		bytesUsed: 1000, totalBytes: 5000, errs: [5]uint64{10, 11, 12, 13, 14},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(btrfsIoctlDevice{})); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
	if got := btrfsDevUUID(make([]byte, 16)); got != "<zero>" {
		t.Errorf("zero UUID: %q", got)
	}
}

// TestBtrfsFilesystemRemoved: a filesystem unmounted between scrapes leaves
// the next scrape without its series; the last one going away is no data.
func TestBtrfsFilesystemRemoved(t *testing.T) {
	t.Parallel()
	dir := collectortest.CopyTree(t, "btrfs/good")
	c := collectortest.MustBuildFixture(t, "btrfs", dir)
	collectortest.RemoveFile(t, dir, "sys/fs/btrfs/7f07c59f-6136-449c-ab87-e1cf2328731b")
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "7f07c59f") || !strings.Contains(string(out), "0abb23a9") {
		t.Errorf("after unmount:\n%s", out)
	}
	for _, u := range []string{"0abb23a9-579b-43e6-ad30-227ef47fcb9d", "e2a7b64c-0d3e-4a35-9a2f-4b0e9f7d6c51"} {
		collectortest.RemoveFile(t, dir, "sys/fs/btrfs/"+u)
	}
	if _, err := collectortest.Exposition(t, c); !errors.Is(err, collectors.ErrNoData) {
		t.Errorf("no filesystem left: want ErrNoData, got %v", err)
	}
}

// TestNodeExporterConformanceHostBtrfs makes a real btrfs filesystem on a
// loop device and compares the ioctl branch with node_exporter's. It needs
// root, mkfs.btrfs and a free loop device, and is skipped without them.
func TestNodeExporterConformanceHostBtrfs(t *testing.T) {
	bin := os.Getenv("NODE_EXPORTER_BIN")
	if bin == "" {
		t.Skip("NODE_EXPORTER_BIN is not set; make node-conformance sets it")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a loop device")
	}
	mkfs, err := exec.LookPath("mkfs.btrfs")
	if err != nil {
		t.Skip("mkfs.btrfs is not installed (apt-get install btrfs-progs)")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "btrfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 256<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(mkfs, "-q", "-L", "nodeagent-test", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v\n%s", err, out)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot loop-mount: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", mnt, err, out)
		}
	})
	if err := os.WriteFile(filepath.Join(mnt, "data"), make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	syscall.Sync()

	c := collectortest.MustBuild(t, "btrfs", collectortest.HostEnv(t))
	out, err := collectortest.Exposition(t, c)
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if !strings.Contains(string(out), "node_btrfs_device_errors_total") {
		t.Fatalf("no ioctl device statistics for the loop filesystem:\n%s", out)
	}
	ours := collectortest.Parse(t, out)
	theirs := collectortest.ScrapeNodeExporter(t, bin, []string{
		"--web.listen-address=127.0.0.1:0", "--collector.disable-defaults", "--collector.btrfs",
	})
	tally := collectortest.CompareFamilies(t, ours, theirs, &collectortest.Rules{
		// Commit timings move with every transaction the kernel commits
		// between the two scrapes: their label sets are compared, not
		// their values.
		Volatile: regexp.MustCompile(`^node_btrfs_(commits_total|commit_seconds_total|last_commit_seconds|max_commit_seconds)$`),
	})
	if tally.Series == 0 {
		t.Errorf("compared no series: %s", tally)
	}
	t.Log(tally)
}

// FuzzDecodeBtrfsDevice feeds arbitrary kernel replies, sized as the kernel
// sizes them, to the ioctl decoders.
func FuzzDecodeBtrfsDevice(f *testing.F) {
	f.Add([]byte("\x02\x00\x00\x00\x00\x00\x00\x00\x0c\x1d"), []byte("\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, devInfo, stats []byte) {
		fit := func(b []byte, n int) []byte {
			out := make([]byte, n)
			copy(out, b)
			return out
		}
		d := decodeBtrfsDevice(fit(devInfo, btrfsDevInfoSize), fit(stats, btrfsGetDevStatsSize))
		if d.uuid != "<zero>" && len(d.uuid) != 36 {
			t.Errorf("device UUID %q is not 8-4-4-4-12", d.uuid)
		}
		if len(d.path) > 1024 {
			t.Errorf("path of %d bytes", len(d.path))
		}
		decodeBtrfsFsInfo(fit(devInfo, btrfsFsInfoSize))
	})
}
