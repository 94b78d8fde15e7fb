package cgroup

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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

func TestWalk(t *testing.T) {
	t.Parallel()
	qos := "kubepods.slice/kubepods-burstable.slice"
	pod := qos + "/kubepods-burstable-pod" + uidU + ".slice"
	root := mkTree(t,
		"system.slice/kubelet.service",
		"init.scope",
		pod+"/cri-containerd-"+cid+".scope/nested",
		pod+"/crio-conmon-"+cid+".scope",
		"kubepods.slice/kubepods-pod"+strings.ReplaceAll(suid, "-", "_")+".slice",
	)
	fs, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.NewWalker().Walk()
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
	root := mkTree(t, "system.slice/good.service", "system.slice/bad\xff.service/child")
	fs, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.NewWalker().Walk()
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
	root := mkTree(t, "system.slice/a.service")
	fs, err := NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	w := fs.NewWalker()
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
