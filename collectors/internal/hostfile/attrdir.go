package hostfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// AttrDir keeps the descriptors of some attributes of one sysfs directory
// open between scrapes, and reads each with one pread(2) from offset 0,
// for which kernfs renders the attribute anew. Against opening the path
// each time (openat through the directory's symbolic links, the Go
// runtime's network-poller registration, fcntl, read, close) it is one
// system call a read. It is only for sysfs: a regular file replaced by
// rename would keep being read through the old descriptor (IsSysfs).
//
// The descriptors are plain ones from golang.org/x/sys/unix: os.File would
// register each with the network poller, which sysfs files accept.
type AttrDir struct {
	dir string
	ino uint64
	fds map[string]int // -1: the attribute is absent or cannot be opened
	buf []byte
}

// attrReadSize is what procfs' SysReadFile reads of an attribute, so that
// values are cut where procfs cuts them.
const attrReadSize = 128

// ErrGone says that a kept directory's device went away.
var ErrGone = errors.New("device gone")

// IsSysfs says whether path is on a sysfs mount.
func IsSysfs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.SYSFS_MAGIC
}

// DirIno is the inode of directory dir (symbolic links followed), which
// kernfs gives anew to a device that is removed and added again under the
// same name.
func DirIno(dir string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return st.Ino, nil
}

// OpenAttrDir opens the attributes names of dir, whose inode is ino. An
// attribute that does not exist or may not be read is remembered as
// absent; any other failure is an error.
func OpenAttrDir(dir string, ino uint64, names []string) (*AttrDir, error) {
	d := &AttrDir{dir: dir, ino: ino, fds: make(map[string]int, len(names)), buf: make([]byte, attrReadSize)}
	for _, n := range names {
		p := filepath.Join(dir, n)
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		switch {
		case err == nil:
			d.fds[n] = fd
		case ignorable(err):
			d.fds[n] = -1
		default:
			d.Close()
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
	}
	return d, nil
}

// Ino is the inode of the directory when it was opened.
func (d *AttrDir) Ino() uint64 { return d.ino }

// Read reads attribute name, white space trimmed as procfs trims it; ok is
// false when the attribute is absent or the device refuses it now (as
// procfs' netclass parser ignores it: EINVAL for the speed of a link that
// is down, EOPNOTSUPP, ENODATA). ErrGone when the device was removed.
func (d *AttrDir) Read(name string) (value string, ok bool, err error) {
	fd, kept := d.fds[name]
	if !kept {
		return "", false, fmt.Errorf("%s: attribute %s was not opened", d.dir, name)
	}
	if fd < 0 {
		return "", false, nil
	}
	n, err := unix.Pread(fd, d.buf, 0)
	switch {
	case err == nil:
		return strings.TrimSpace(string(d.buf[:n])), true, nil
	case errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT):
		return "", false, fmt.Errorf("reading %s: %w", filepath.Join(d.dir, name), ErrGone)
	case ignorable(err):
		return "", false, nil
	}
	return "", false, &os.PathError{Op: "read", Path: filepath.Join(d.dir, name), Err: err}
}

// Close closes the descriptors.
func (d *AttrDir) Close() {
	for n, fd := range d.fds {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
		d.fds[n] = -1
	}
}

// ignorable are the errors procfs' netclass parser skips an attribute for.
func ignorable(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENODATA)
}

// AttrDirs keeps AttrDirs between scrapes by a key (a device's name): a
// directory's descriptors are reused while it is the same directory (the
// same inode), and opened anew when a device was removed and added again
// under the same name. For one goroutine at a time.
type AttrDirs struct {
	names []string
	dirs  map[string]*AttrDir
}

// NewAttrDirs keeps AttrDirs of the attributes names.
func NewAttrDirs(names []string) *AttrDirs {
	return &AttrDirs{names: names, dirs: map[string]*AttrDir{}}
}

// Open returns the AttrDir kept under key if it is dir's, or opens dir's
// and keeps it under key instead.
func (k *AttrDirs) Open(key, dir string) (*AttrDir, error) {
	ino, err := DirIno(dir)
	if err != nil {
		return nil, err
	}
	if d := k.dirs[key]; d != nil && d.Ino() == ino {
		return d, nil
	}
	k.Forget(key)
	d, err := OpenAttrDir(dir, ino, k.names)
	if err != nil {
		return nil, err
	}
	k.dirs[key] = d
	return d, nil
}

// Has says whether an AttrDir is kept under key.
func (k *AttrDirs) Has(key string) bool { _, ok := k.dirs[key]; return ok }

// Len is how many AttrDirs are kept.
func (k *AttrDirs) Len() int { return len(k.dirs) }

// Forget closes and drops the AttrDir kept under key, if any.
func (k *AttrDirs) Forget(key string) {
	if d := k.dirs[key]; d != nil {
		d.Close()
		delete(k.dirs, key)
	}
}

// Keep closes and drops the AttrDirs whose keys are not in seen.
func (k *AttrDirs) Keep(seen map[string]bool) {
	for key := range k.dirs {
		if !seen[key] {
			k.Forget(key)
		}
	}
}
