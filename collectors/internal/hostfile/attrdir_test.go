package hostfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAttrDir over a plain directory (what sysfs does differently, the
// rendering anew, is TestNetclassKeptMatchesProcfsOnHost's): values
// trimmed as procfs trims them, absent attributes reported absent, a
// rewrite in place seen by the next pread, and a directory made anew given
// a new inode, which is how netclass knows to reopen.
func TestAttrDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "eth0")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, v string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("mtu", "1500\n")
	write("operstate", "  up \n")
	ino, err := DirIno(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, err := OpenAttrDir(dir, ino, []string{"mtu", "operstate", "speed"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	read := func(name, want string, wantOK bool) {
		t.Helper()
		v, ok, err := d.Read(name)
		if err != nil || v != want || ok != wantOK {
			t.Errorf("Read(%s) = %q, %v, %v; want %q, %v, nil", name, v, ok, err, want, wantOK)
		}
	}
	read("mtu", "1500", true)
	read("operstate", "up", true)
	read("speed", "", false)
	write("mtu", "9000\n") // O_TRUNC: the same inode
	read("mtu", "9000", true)
	if _, _, err := d.Read("carrier"); err == nil {
		t.Error("Read of an attribute never opened: no error")
	}

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := DirIno(dir); !os.IsNotExist(err) {
		t.Errorf("DirIno of a removed directory: %v, want not-exist", err)
	}
	// A placeholder keeps the old inode number from being reused at once.
	keep := filepath.Join(filepath.Dir(dir), "placeholder")
	if err := os.Mkdir(keep, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if ino2, err := DirIno(dir); err != nil || ino2 == ino {
		t.Errorf("DirIno of the directory made anew: %d, %v; want an inode other than %d", ino2, err, ino)
	}
	if IsSysfs(dir) {
		t.Errorf("%s counted as sysfs", dir)
	}
}

// TestAttrDirs: an AttrDir kept under a key is reused while its directory
// is the same one, opened anew for a directory made again under the same
// path, and dropped (closed) when forgotten or not seen.
func TestAttrDirs(t *testing.T) {
	root := t.TempDir()
	mk := func(name string) string {
		t.Helper()
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "mtu"), []byte("1500\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	k := NewAttrDirs([]string{"mtu"})
	t.Cleanup(func() { k.Keep(nil) })
	eth0, eth1 := mk("eth0"), mk("eth1")
	first, err := k.Open("eth0", eth0)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := k.Open("eth0", eth0); err != nil || again != first {
		t.Fatalf("the same directory was opened anew (%v)", err)
	}
	if _, err := k.Open("eth1", eth1); err != nil {
		t.Fatal(err)
	}

	// eth0 made again: a new directory (made before the old one goes, so
	// that its inode differs).
	fresh := mk("eth0.new")
	if err := os.Rename(eth0, filepath.Join(root, "eth0.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(fresh, eth0); err != nil {
		t.Fatal(err)
	}
	second, err := k.Open("eth0", eth0)
	if err != nil || second == first {
		t.Fatalf("a directory made again was not opened anew (%v)", err)
	}
	if fd := first.fds["mtu"]; fd >= 0 {
		t.Errorf("the replaced AttrDir still holds descriptor %d", fd)
	}

	k.Keep(map[string]bool{"eth1": true})
	if k.Has("eth0") || !k.Has("eth1") || k.Len() != 1 {
		t.Errorf("after Keep(eth1): eth0 kept %v, eth1 kept %v, %d kept", k.Has("eth0"), k.Has("eth1"), k.Len())
	}
	if fd := second.fds["mtu"]; fd >= 0 {
		t.Errorf("an AttrDir dropped by Keep still holds descriptor %d", fd)
	}
	k.Forget("eth1")
	if k.Len() != 0 {
		t.Errorf("%d kept after Forget", k.Len())
	}
	if _, err := k.Open("gone", filepath.Join(root, "gone")); !os.IsNotExist(err) {
		t.Errorf("opening a missing directory: want a not-exist error, got %v", err)
	}
}
