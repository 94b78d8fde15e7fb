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
