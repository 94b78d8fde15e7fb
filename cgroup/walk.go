package cgroup

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
)

// Walker lists a hierarchy's cgroups. It keeps its buffers between walks;
// one Walker must not be used by two goroutines at once.
type Walker struct {
	fs      FS
	dirBuf  []byte
	entries []Entry

	// With WatchChanges: the inotify watch of the listed directories,
	// and whether entries is a complete walk that no change has made
	// stale since.
	watch    *dirWatch
	cleanup  runtime.Cleanup
	rootIno  uint64
	fresh    bool
	complete bool  // every directory of the walk under way was watched
	watchErr error // why the watch was given up
	listed   int   // directories listed, for tests
}

type dirChild struct {
	name string
	ino  uint64
}

// NewWalker returns a Walker over fs.
func (fs FS) NewWalker() *Walker {
	return &Walker{fs: fs, dirBuf: make([]byte, 32<<10)}
}

// WatchChanges makes Walk list the directories again only after one of
// them gained or lost a subdirectory (dirWatch), and otherwise return the
// previous walk's entries. Where inotify is refused it returns the error
// and the Walker goes on listing every directory on every Walk, as
// without it. Close releases the watch.
func (w *Walker) WatchChanges() error {
	if w.watch != nil {
		return nil
	}
	d, err := newDirWatch()
	if err != nil {
		return err
	}
	w.watch, w.cleanup, w.fresh, w.watchErr = d, d.attach(w), false, nil
	return nil
}

// Close releases the Walker's watch, if it has one; Walk lists every
// directory again afterwards.
func (w *Walker) Close() {
	if w.watch == nil {
		return
	}
	w.cleanup.Stop()
	closeWatchFD(w.watch.fd)
	w.watch, w.fresh = nil, false
}

// Walk lists and classifies every cgroup under the root, depth first with
// siblings sorted by name, the root first. It does not descend below
// container leaves, and leaves CRI-O's conmon cgroups out. A directory
// that vanishes while the walk reads it is left out silently: that is
// churn, not an error. A directory whose name is not valid UTF-8 (it could
// not be a label value) or that cannot be read is left out with its
// subtree and reported in the joined error; the rest is still walked.
//
// The returned slice is reused by the next Walk, and must not be changed.
// With WatchChanges, a Walk that finds no change since the last complete
// one returns that one's slice again.
func (w *Walker) Walk() ([]Entry, error) {
	var st unix.Stat_t
	if err := unix.Stat(w.fs.root, &st); err != nil {
		w.fresh = false
		return nil, fmt.Errorf("cgroup root %s: %w", w.fs.root, &os.PathError{Op: "stat", Path: w.fs.root, Err: err})
	}
	if w.watch != nil {
		changed := w.watch.changed()
		if w.fresh && !changed && st.Ino == w.rootIno {
			return w.entries, nil
		}
		w.watch.begin()
	}
	w.entries = append(w.entries[:0], Entry{Path: "/", Ino: st.Ino, Kind: KindRoot})
	var errs []error
	w.complete = true
	w.walk(0, &errs)
	if w.watch != nil {
		w.watch.end()
		w.rootIno = st.Ino
		// A walk with errors is not kept: the next one reports them
		// again, or finds them gone.
		w.fresh = w.complete && len(errs) == 0
		if w.watchErr != nil {
			w.Close()
		}
	}
	return w.entries, errors.Join(errs...)
}

// Watching says whether Walk skips listing when nothing changed, and if
// not, why the watch was given up (nil if WatchChanges was not called).
func (w *Walker) Watching() (bool, error) { return w.watch != nil, w.watchErr }

// walk appends the subtree below w.entries[i].
func (w *Walker) walk(i int, errs *[]error) {
	parent := w.entries[i]
	dir := w.fs.root + parent.Path
	if parent.Path == "/" {
		dir = w.fs.root
	}
	children, err := w.subdirs(dir)
	if err != nil {
		if !vanished(err) {
			*errs = append(*errs, fmt.Errorf("cgroup %s: %w", parent.Path, err))
		}
		return
	}
	for _, c := range children {
		if !utf8.ValidString(c.name) {
			*errs = append(*errs, fmt.Errorf("cgroup %s/%q: directory name is not valid UTF-8; left out with its subtree", strings.TrimSuffix(parent.Path, "/"), c.name))
			continue
		}
		e, act := classify(&parent, c.name)
		if act == skip {
			continue
		}
		e.Ino = c.ino
		w.entries = append(w.entries, e)
		if act == serveAndDescend {
			w.walk(len(w.entries)-1, errs)
		}
	}
}

// subdirs returns dir's subdirectories sorted by name. The slice is only
// valid until the next call.
func (w *Walker) subdirs(dir string) ([]dirChild, error) {
	if w.watch != nil && w.watchErr == nil {
		// Watched before it is listed, so that a subdirectory made
		// after the listing is seen by the next Walk. A directory that
		// vanished meanwhile is churn: the next Walk lists again. Any
		// other refusal (fs.inotify.max_user_watches reached) gives the
		// watch up after this walk, which still lists every directory:
		// adding watches the kernel refuses on every scrape would cost
		// more than the listing saves.
		if err := w.watch.add(dir); err != nil {
			w.complete = false
			if !vanished(err) {
				w.watchErr = fmt.Errorf("watching %s: %w", dir, err)
			}
		}
	}
	w.listed++
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var out []dirChild
	for {
		n, err := unix.Getdents(fd, w.dirBuf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		var statErr error
		perr := parseDirents(w.dirBuf[:n], func(ino uint64, typ uint8, name []byte) {
			if typ == dtUnknown { // filesystems without d_type
				var st unix.Stat_t
				if err := unix.Fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					if !vanished(err) && statErr == nil {
						statErr = &os.PathError{Op: "stat", Path: dir + "/" + string(name), Err: err}
					}
					return
				}
				if st.Mode&unix.S_IFMT == unix.S_IFDIR {
					typ = dtDir
				}
			}
			if typ != dtDir || string(name) == "." || string(name) == ".." {
				return
			}
			out = append(out, dirChild{name: string(name), ino: ino})
		})
		if perr != nil {
			return nil, fmt.Errorf("reading directory %s: %w", dir, perr)
		}
		if statErr != nil {
			return nil, statErr
		}
	}
	slices.SortFunc(out, func(a, b dirChild) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// vanished says whether err means the file or cgroup is gone: ENOENT when
// opening, ENODEV when reading a descriptor of a removed cgroup.
func vanished(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV)
}
