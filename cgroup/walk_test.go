package cgroup

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// mkTree makes a fixture hierarchy under a temporary root: each path is a
// directory; the root gets a cgroup.controllers file.
func mkTree(t *testing.T, dirs ...string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory io pids\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
		// A control file, as every cgroup has, which the walk must skip.
		if err := os.WriteFile(filepath.Join(root, d, "cpu.stat"), []byte("usage_usec 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// newTreeWalker makes a fixture hierarchy of dirs (mkTree) and returns its
// root and a Walker over it.
func newTreeWalker(t *testing.T, dirs ...string) (string, *Walker) {
	t.Helper()
	root := mkTree(t, dirs...)
	fs, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return root, fs.NewWalker()
}

func TestWalk(t *testing.T) {
	t.Parallel()
	qos := "kubepods.slice/kubepods-burstable.slice"
	pod := qos + "/kubepods-burstable-pod" + uidU + ".slice"
	_, w := newTreeWalker(t,
		"system.slice/kubelet.service",
		"init.scope",
		pod+"/cri-containerd-"+cid+".scope/nested",
		pod+"/crio-conmon-"+cid+".scope",
		"kubepods.slice/kubepods-pod"+strings.ReplaceAll(suid, "-", "_")+".slice",
	)
	got, err := w.Walk()
	if err != nil {
		t.Fatal(err)
	}
	type brief struct {
		Path string
		Kind Kind
		Pod  string
		ID   string
	}
	var gotB []brief
	for _, e := range got {
		if e.Ino == 0 {
			t.Errorf("%s: no inode", e.Path)
		}
		gotB = append(gotB, brief{e.Path, e.Kind, e.PodUID, e.ContainerID})
	}
	want := []brief{
		{"/", KindRoot, "", ""},
		{"/init.scope", KindHost, "", ""},
		{"/kubepods.slice", KindKubepods, "", ""},
		{"/" + qos, KindQoS, "", ""},
		{"/" + pod, KindPod, uid, ""},
		{"/" + pod + "/cri-containerd-" + cid + ".scope", KindContainer, uid, cid},
		{"/kubepods.slice/kubepods-pod" + suid + ".slice", KindPod, suid, ""},
		{"/system.slice", KindHost, "", ""},
		{"/system.slice/kubelet.service", KindHost, "", ""},
	}
	if diff := cmp.Diff(want, gotB); diff != "" {
		t.Errorf("-want +got:\n%s", diff)
	}
}

func TestWalkNonUTF8(t *testing.T) {
	t.Parallel()
	_, w := newTreeWalker(t, "system.slice/good.service", "system.slice/bad\xff.service/child")
	got, err := w.Walk()
	if err == nil || !strings.Contains(err.Error(), `"bad\xff.service": directory name is not valid UTF-8`) {
		t.Errorf("err = %v, want one naming the directory", err)
	}
	var paths []string
	for _, e := range got {
		paths = append(paths, e.Path)
	}
	if diff := cmp.Diff([]string{"/", "/system.slice", "/system.slice/good.service"}, paths); diff != "" {
		t.Errorf("the rest must still be walked (-want +got):\n%s", diff)
	}
}

func TestWalkRecreatedGetsNewInode(t *testing.T) {
	t.Parallel()
	root, w := newTreeWalker(t, "system.slice/a.service")
	first, err := w.Walk()
	if err != nil {
		t.Fatal(err)
	}
	ino := first[2].Ino
	// Keep the old inode alive (open) so the filesystem cannot reuse it.
	old, err := os.Open(filepath.Join(root, "system.slice/a.service"))
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := os.RemoveAll(filepath.Join(root, "system.slice/a.service")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "system.slice/a.service"), 0o755); err != nil {
		t.Fatal(err)
	}
	second, err := w.Walk()
	if err != nil {
		t.Fatal(err)
	}
	if second[2].Path != "/system.slice/a.service" || second[2].Ino == ino {
		t.Errorf("recreated cgroup: %+v, old inode %d", second[2], ino)
	}
}

func dirent(ino uint64, typ uint8, name string) []byte {
	reclen := (direntHeader + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint64(b[0:], ino)
	binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
	b[18] = typ
	copy(b[direntHeader:], name)
	return b
}

func TestParseDirents(t *testing.T) {
	t.Parallel()
	buf := append(dirent(7, dtDir, "kubepods.slice"), dirent(9, 8, "cpu.stat")...)
	var got []string
	if err := parseDirents(buf, func(ino uint64, typ uint8, name []byte) {
		got = append(got, string(name))
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"kubepods.slice", "cpu.stat"}, got); diff != "" {
		t.Error(diff)
	}
	for _, bad := range [][]byte{buf[:10], buf[:len(buf)-1]} {
		if err := parseDirents(bad, func(uint64, uint8, []byte) {}); !errors.Is(err, ErrParse) {
			t.Errorf("truncated buffer: err = %v", err)
		}
	}
}

func FuzzParseDirents(f *testing.F) {
	f.Add(append(dirent(7, dtDir, "kubepods.slice"), dirent(9, 8, "x")...))
	f.Add([]byte{})
	f.Add(make([]byte, 19))
	f.Fuzz(func(t *testing.T, b []byte) {
		total := 0
		_ = parseDirents(b, func(_ uint64, _ uint8, name []byte) { total += len(name) })
		if total > len(b) {
			t.Fatalf("names longer than the buffer")
		}
	})
}

func walkPaths(t *testing.T, w *Walker) []string {
	t.Helper()
	entries, err := w.Walk()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range entries {
		paths = append(paths, e.Path)
	}
	return paths
}

// TestWalkWatchesChanges: with WatchChanges a Walk after no change lists no
// directory and returns the same cgroups; a cgroup made or removed at any
// depth, or the root recreated, is found by the next Walk; a file made in a
// cgroup directory is not a change. Run on the fixture filesystem and,
// with root, on a real cgroup2 hierarchy.
func TestWalkWatchesChanges(t *testing.T) {
	t.Parallel()
	type fixture struct {
		root string // the FS root
		base string // where the test makes its cgroups, below root
	}
	fixtures := map[string]func(t *testing.T) fixture{
		"fixture": func(t *testing.T) fixture {
			root := mkTree(t)
			return fixture{root, root}
		},
		"kernel": func(t *testing.T) fixture {
			mount := writableCgroup2(t)
			base, err := os.MkdirTemp(mount, "nodeagent-test-watch-")
			if err != nil {
				t.Skipf("cannot create a cgroup under %s: %v", mount, err)
			}
			// Removed leaves first: cgroupfs removes only empty cgroups.
			t.Cleanup(func() {
				var dirs []string
				_ = filepath.WalkDir(base, func(p string, d os.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						dirs = append(dirs, p)
					}
					return nil
				})
				for i := len(dirs) - 1; i >= 0; i-- {
					_ = os.Remove(dirs[i])
				}
			})
			// The walk's root is the test's own cgroup: other tests make
			// and remove cgroups elsewhere in the hierarchy meanwhile.
			return fixture{base, base}
		},
	}
	for name, mk := range fixtures {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := mk(t)
			rel := strings.TrimPrefix(f.base, f.root)
			pod := filepath.Join(f.base, "kubepods.slice", "kubepods-pod"+strings.ReplaceAll(uid, "-", "_")+".slice")
			if err := os.MkdirAll(pod, 0o755); err != nil {
				t.Fatal(err)
			}
			fs, err := NewFS(f.root)
			if err != nil {
				t.Fatal(err)
			}
			w := fs.NewWalker()
			if err := w.WatchChanges(); err != nil {
				t.Skipf("no inotify: %v", err)
			}
			defer w.Close()
			has := func(paths []string, p string) bool { return slices.Contains(paths, p) }
			podPath := rel + "/kubepods.slice/kubepods-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice"
			ctr := podPath + "/cri-containerd-" + cid + ".scope"

			first := walkPaths(t, w)
			if !has(first, podPath) {
				t.Fatalf("first walk misses %s: %v", podPath, first)
			}
			lastListing := 0 // directories the last full walk listed, and so watched
			step := func(what string, change func() error, wantListing bool, check func(paths []string) bool) {
				t.Helper()
				if change != nil {
					if err := change(); err != nil {
						t.Fatalf("%s: %v", what, err)
					}
				}
				before := w.listed
				paths := walkPaths(t, w)
				listed := w.listed - before
				if (listed > 0) != wantListing {
					t.Errorf("%s: listed %d directories, want a listing: %v", what, listed, wantListing)
				}
				if listed > 0 {
					lastListing = listed
				}
				if !check(paths) {
					t.Errorf("%s: walk is %v", what, paths)
				}
			}
			step("no change", nil, false, func(p []string) bool { return slices.Equal(p, first) })
			if name == "fixture" { // cgroupfs makes no files on request
				step("a file made", func() error {
					return os.WriteFile(filepath.Join(pod, "cpu.stat"), []byte("usage_usec 1\n"), 0o644)
				}, false, func(p []string) bool { return slices.Equal(p, first) })
			}
			step("a container made", func() error {
				return os.Mkdir(filepath.Join(f.root, ctr), 0o755)
			}, true, func(p []string) bool { return has(p, ctr) })
			step("then no change", nil, false, func(p []string) bool { return has(p, ctr) })
			step("the container removed", func() error {
				return os.Remove(filepath.Join(f.root, ctr))
			}, true, func(p []string) bool { return !has(p, ctr) && slices.Equal(p, first) })
			step("the pod removed", func() error {
				if name == "fixture" {
					return os.RemoveAll(filepath.Join(f.root, podPath))
				}
				return os.Remove(filepath.Join(f.root, podPath))
			}, true, func(p []string) bool { return !has(p, podPath) })
			step("the pod made again, with its container", func() error {
				return os.MkdirAll(filepath.Join(f.root, ctr), 0o755)
			}, true, func(p []string) bool { return has(p, ctr) })
			step("then no change again", nil, false, func(p []string) bool { return has(p, ctr) })
			if got := len(w.watch.watched); got != lastListing {
				t.Errorf("%d watches for the %d directories listed: removed directories' watches are kept", got, lastListing)
			}
		})
	}
}

// TestWalkWatchGivenUp: a watch the kernel refuses (here a bad descriptor,
// as the watch limit would) makes the walk list every directory, then and
// on every later Walk, and Watching says why.
func TestWalkWatchGivenUp(t *testing.T) {
	t.Parallel()
	_, w := newTreeWalker(t, "system.slice/a.service")
	if err := w.WatchChanges(); err != nil {
		t.Skipf("no inotify: %v", err)
	}
	closeWatchFD(w.watch.fd)
	w.watch.fd = -1 // refused from now on, and never a descriptor someone else holds
	for i := range 3 {
		before := w.listed
		if got := walkPaths(t, w); len(got) != 3 {
			t.Fatalf("walk %d: %v", i, got)
		}
		if w.listed-before != 3 {
			t.Errorf("walk %d listed %d directories, want all 3", i, w.listed-before)
		}
	}
	if watching, why := w.Watching(); watching || why == nil {
		t.Errorf("Watching() = %v, %v; want false and the refusal", watching, why)
	}
}

func TestEventsChange(t *testing.T) {
	t.Parallel()
	event := func(mask uint32, name string) []byte {
		n := (len(name) + 1 + 15) &^ 15
		b := make([]byte, unix.SizeofInotifyEvent+n)
		binary.NativeEndian.PutUint32(b[0:], 1)
		binary.NativeEndian.PutUint32(b[4:], mask)
		binary.NativeEndian.PutUint32(b[12:], uint32(n))
		copy(b[unix.SizeofInotifyEvent:], name)
		return b
	}
	for _, tc := range []struct {
		name string
		buf  []byte
		want bool
	}{
		{"empty", nil, false},
		{"file made", event(unix.IN_CREATE, "cpu.stat"), false},
		{"file removed", event(unix.IN_DELETE, "cpu.stat"), false},
		{"directory made", event(unix.IN_CREATE|unix.IN_ISDIR, "pod"), true},
		{"directory removed after a file", append(event(unix.IN_CREATE, "x"), event(unix.IN_DELETE|unix.IN_ISDIR, "pod")...), true},
		{"directory moved in", event(unix.IN_MOVED_TO|unix.IN_ISDIR, "pod"), true},
		{"watched directory removed", event(unix.IN_DELETE_SELF, ""), true},
		{"queue overflow", event(unix.IN_Q_OVERFLOW, ""), true},
		{"cut record", event(unix.IN_CREATE, "a-long-name")[:20], true},
	} {
		if got := eventsChange(tc.buf); got != tc.want {
			t.Errorf("%s: eventsChange = %v, want %v", tc.name, got, tc.want)
		}
	}
}
