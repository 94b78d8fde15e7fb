package cgroup

import (
	"encoding/binary"
	"errors"
	"runtime"

	"golang.org/x/sys/unix"
)

// dirWatch tells a Walker whether any directory it listed has gained or
// lost a subdirectory since, through inotify: a cgroup is made by mkdir(2)
// and removed by rmdir(2), and the kernel queues the event on the parent's
// watch before the system call returns, so a walk that finds the queue
// empty may serve the previous walk's list. On a node whose pods did not
// change that spares the walk's open, getdents and close of every
// directory (~110 directories on the test cluster's node, ~270 in the
// 1,000-container tree) on every scrape.
//
// Each directory is watched before it is listed, so a change after the
// listing is always queued. A watch is not removed by the kernel when a
// cgroup directory is removed (cgroupfs sends no IN_IGNORED then), so
// after each walk the watches of directories it no longer found are
// removed, which keeps the watches as many as the directories.
type dirWatch struct {
	fd      int
	buf     []byte
	watched map[int32]bool // wd → seen by the walk under way
}

// watchMask: a subdirectory made, removed or moved, or the directory
// itself removed or moved.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO |
	unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// newDirWatch returns a dirWatch, or an error where inotify is not
// available (a seccomp filter that refuses it, the per-user instance limit).
// The descriptor is closed with the watch's owner: Walker.Close, or the
// garbage collector's cleanup of a Walker nobody closed.
func newDirWatch() (*dirWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &dirWatch{fd: fd, buf: make([]byte, 4096), watched: map[int32]bool{}}, nil
}

// changed drains the queued events and says whether any could change the
// walk's result: a subdirectory made, removed or moved in a watched
// directory, a watched directory removed or moved, or a lost event (the
// queue overflowed). Files made or removed in a cgroup directory (a fixture
// tree's) do not count. An error reading the queue counts as a change.
func (d *dirWatch) changed() bool {
	changed := false
	for {
		n, err := unix.Read(d.fd, d.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return changed
		}
		if err != nil || n <= 0 {
			return true
		}
		if eventsChange(d.buf[:n]) {
			changed = true
		}
	}
}

// eventsChange says whether a buffer of inotify events holds one that
// changes the walk's result. The records are struct inotify_event: wd,
// mask, cookie, len, then len bytes of name.
func eventsChange(buf []byte) bool {
	for len(buf) >= unix.SizeofInotifyEvent {
		mask := binary.NativeEndian.Uint32(buf[4:8])
		nameLen := int(binary.NativeEndian.Uint32(buf[12:16]))
		switch {
		case mask&unix.IN_Q_OVERFLOW != 0,
			mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0,
			mask&unix.IN_ISDIR != 0 && mask&(unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO) != 0:
			return true
		}
		next := unix.SizeofInotifyEvent + nameLen
		if next > len(buf) {
			return true // the kernel never cuts a record; do not trust the rest
		}
		buf = buf[next:]
	}
	return len(buf) != 0
}

// begin starts a walk: every watch is marked not yet seen.
func (d *dirWatch) begin() {
	for wd := range d.watched {
		d.watched[wd] = false
	}
}

// add watches dir before the walk lists it; adding a directory watched
// already returns its watch. It fails when the kernel refuses (the
// per-user watch limit, fs.inotify.max_user_watches).
func (d *dirWatch) add(dir string) error {
	wd, err := unix.InotifyAddWatch(d.fd, dir, watchMask)
	if err != nil {
		return err
	}
	d.watched[int32(wd)] = true
	return nil
}

// end removes the watches of directories the walk did not find again.
func (d *dirWatch) end() {
	for wd, seen := range d.watched {
		if !seen {
			// Already gone with its inode, or still held by a
			// removed directory's inode: either way not needed.
			_, _ = unix.InotifyRmWatch(d.fd, uint32(wd))
			delete(d.watched, wd)
		}
	}
}

func closeWatchFD(fd int) { _ = unix.Close(fd) }

// attach ties the watch's descriptor to w: closed when w is garbage
// collected unless Close closed it first.
func (d *dirWatch) attach(w *Walker) runtime.Cleanup {
	return runtime.AddCleanup(w, closeWatchFD, d.fd)
}
