package cgroup

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrVanished marks a cgroup that was removed while it was being read;
// callers skip it silently, because that is normal churn.
var ErrVanished = errors.New("cgroup vanished")

// errAbsent is an optional file the cgroup does not have.
var errAbsent = errors.New("absent")

// maxFileSize caps one read: cgroup.procs of a busy root cgroup runs to a
// few hundred KiB, everything else to a few KiB.
const maxFileSize = 16 << 20

// Budget bounds how many descriptors Groups keep open across scrapes.
//
// Why keep any: on the kernel's cgroupfs an open+read+close of a cgroup
// file costs several times a pread on a descriptor already open (the open
// allocates a kernfs_open_file and a seq_file, the close frees them), and a
// scrape reads a dozen files per cgroup. Why bound them: each open cgroup
// file whose content has been read keeps its seq_file buffer, one page,
// until it is closed, so a cached descriptor costs about 6 KiB of kernel
// memory, charged to nodeagent's own cgroup, and counts against
// RLIMIT_NOFILE. Files beyond the budget are read with open+read+close.
type Budget struct {
	max  int64
	open atomic.Int64
}

// NewBudget returns a Budget of max descriptors; 0 keeps none open.
func NewBudget(max int) *Budget { return &Budget{max: int64(max)} }

// Open is how many descriptors are held now.
func (b *Budget) Open() int { return int(b.open.Load()) }

func (b *Budget) acquire() bool {
	// A spent budget is the steady state past ~680 cgroups: there a read
	// that writes nothing spares the two contended atomic adds per file
	// opened (1 % of the agent's CPU at 1,000 containers).
	if b == nil || b.max <= 0 || b.open.Load() >= b.max {
		return false
	}
	if b.open.Add(1) > b.max {
		b.open.Add(-1)
		return false
	}
	return true
}

func (b *Budget) release() { b.open.Add(-1) }

// Group reads one cgroup's files. It keeps descriptors open across Reads
// within its Budget, remembers which optional files the cgroup lacks, and
// must be closed when the cgroup is no longer listed. A Group is used by
// one goroutine at a time.
type Group struct {
	// The cgroup's directory is root + rel, made when it is needed (to
	// open the directory, in errors): most scrapes read through kept
	// descriptors, and a second copy of every cgroup's path (~190 bytes
	// for a container's) would be held for that.
	root, rel string // rel as Entry.Path has it
	ino       uint64
	budget    *Budget
	fds       [numFiles]int32 // cached descriptor, or -1
	dirfd     int32           // O_PATH descriptor of the directory for opening files not cached, or -1
	absent    FileSet
	// v1 are the v1 hierarchies of a hybrid host whose files stand in for
	// the v2 ones (in v1[c] + rel; hybrid.go), "" for the others; v1Dirfds
	// their directories' O_PATH descriptors, as dirfd.
	v1       *[numV1]string
	v1Dirfds [numV1]int32
}

// Open returns a Group for the cgroup at path (as Entry.Path has it) whose
// directory has inode ino. It makes no system call: files are opened on
// first Read.
func (fs FS) Open(path string, ino uint64, budget *Budget) *Group {
	g := &Group{root: fs.root, rel: path, v1: fs.v1, ino: ino, budget: budget, dirfd: -1, absent: fs.noV1}
	for i := range g.fds {
		g.fds[i] = -1
	}
	for i := range g.v1Dirfds {
		g.v1Dirfds[i] = -1
	}
	return g
}

// Ino is the inode of the directory the Group was opened for.
func (g *Group) Ino() uint64 { return g.ino }

// Dir is the cgroup's directory.
func (g *Group) Dir() string { return under(g.root, g.rel) }

// v1Dir is the cgroup's directory in the v1 hierarchy of controller c.
func (g *Group) v1Dir(c v1Controller) string { return under(g.v1[c], g.rel) }

// under is the directory of cgroup path in the hierarchy at root.
func under(root, path string) string {
	if path == "/" {
		return root
	}
	return root + path
}

// Close closes every cached descriptor. The Group must not be used after.
func (g *Group) Close() {
	for i, fd := range g.fds {
		if fd >= 0 {
			_ = unix.Close(int(fd))
			g.fds[i] = -1
			g.budget.release()
		}
	}
	if g.dirfd >= 0 {
		_ = unix.Close(int(g.dirfd))
		g.dirfd = -1
	}
	for i, fd := range g.v1Dirfds {
		if fd >= 0 {
			_ = unix.Close(int(fd))
			g.v1Dirfds[i] = -1
		}
	}
}

// fromV1 says whether file f is read from a v1 hierarchy.
func (g *Group) fromV1(f File) bool {
	c := v1Files[f].ctrl
	return c != v1None && g.v1 != nil && g.v1[c] != ""
}

// path is file f's path, for errors.
func (g *Group) path(f File) string {
	if g.fromV1(f) {
		v := v1Files[f]
		return g.v1Dir(v.ctrl) + "/" + v.name
	}
	return g.Dir() + "/" + fileNames[f]
}

// openFile opens file f relative to the cgroup's directory. Files that are
// not cached are opened through an O_PATH descriptor of the directory (kept
// outside the Budget: it holds no seq_file buffer), which spares building
// and copying the full path on every open.
func (g *Group) openFile(f File) (int, error) {
	dir, dirfd, name := g.Dir, &g.dirfd, fileNames[f]
	if g.fromV1(f) {
		v := v1Files[f]
		dir, dirfd, name = func() string { return g.v1Dir(v.ctrl) }, &g.v1Dirfds[v.ctrl], v.name
	}
	if *dirfd < 0 {
		fd, err := unix.Open(dir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return -1, err
		}
		*dirfd = int32(fd)
	}
	for {
		fd, err := openatNoSched(int(*dirfd), name)
		if !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
}

// Read reads and parses the wanted files into st, using and growing *buf
// as scratch space; the files of cache keep their descriptors open for the
// next Read, within the Budget. Only the wanted files' fields and Present
// bits change: st keeps what an earlier Read found in the other files
// (files that change rarely need not be read every scrape).
//
// A file the cgroup lacks is left out of st.Present. If the cgroup was
// removed meanwhile, Read returns an error wrapping ErrVanished (and st is
// partial). Otherwise a file that cannot be read or parsed is left out of
// st.Present and its error, naming the file, is in the returned joined
// error; the other files are still read.
func (g *Group) Read(want, cache FileSet, buf *[]byte, st *Stats) error {
	st.Present &^= want
	var errs []error
	newlyAbsent := false
	for f := File(0); f < numFiles; f++ {
		if !want.Has(f) || g.absent.Has(f) {
			continue
		}
		data, err := g.read(f, cache.Has(f), buf)
		switch {
		case errors.Is(err, errAbsent):
			newlyAbsent = true
			continue
		case err != nil && errors.Is(err, ErrVanished):
			return err
		case err != nil:
			errs = append(errs, err)
			continue
		}
		parse := st.parse
		if g.fromV1(f) {
			parse = st.parseV1
		}
		if err := parse(f, data); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g.path(f), err))
			continue
		}
		st.Present |= 1 << f
	}
	// A file found missing for the first time may mean the whole cgroup
	// went away after its core files were read: check, so that a vanishing
	// cgroup is skipped rather than served half-empty.
	if newlyAbsent {
		dir := g.Dir()
		if err := unix.Access(dir, unix.F_OK); err != nil && vanished(err) {
			return fmt.Errorf("%s: %w", dir, ErrVanished)
		}
	}
	return errors.Join(errs...)
}

// read returns file f's content in *buf, errAbsent, or an error; with
// keep, the descriptor stays open if the budget allows.
func (g *Group) read(f File, keep bool, buf *[]byte) ([]byte, error) {
	path := func() string { return g.path(f) }
	fd := int(g.fds[f])
	cached := fd >= 0
	if !cached {
		var err error
		fd, err = g.openFile(f)
		switch {
		case errors.Is(err, unix.ENOENT) && !f.core():
			g.absent |= 1 << f
			return nil, errAbsent
		case err != nil && vanished(err):
			return nil, fmt.Errorf("%s: %w", path(), ErrVanished)
		case err != nil:
			return nil, &os.PathError{Op: "open", Path: path(), Err: err}
		}
		if keep && g.budget.acquire() {
			g.fds[f] = int32(fd)
			cached = true
		}
	}
	data, err := preadAll(fd, buf, f == FileCgroupProcs)
	if !cached {
		_ = closeNoSched(fd)
	}
	switch {
	case err == nil:
		return data, nil
	case vanished(err):
		return nil, fmt.Errorf("%s: %w", path(), ErrVanished)
	case errors.Is(err, unix.EOPNOTSUPP) && !f.core():
		// Pressure files exist but refuse reads when PSI is off (psi=0).
		g.forget(f)
		g.absent |= 1 << f
		return nil, errAbsent
	}
	g.forget(f)
	return nil, &os.PathError{Op: "read", Path: path(), Err: err}
}

// Release closes the kept descriptors of files, giving their slots in the
// Budget back: for files a reader has stopped reading (a cgroup's
// SubtreeTotals while an ancestor holds zero in them).
func (g *Group) Release(files FileSet) {
	for f := File(0); f < numFiles; f++ {
		if files.Has(f) {
			g.forget(f)
		}
	}
}

// forget closes f's cached descriptor, if any.
func (g *Group) forget(f File) {
	if fd := g.fds[f]; fd >= 0 {
		_ = unix.Close(int(fd))
		g.fds[f] = -1
		g.budget.release()
	}
}

// seqEOFBelow: a read of a multi-record kernel file (cgroup.procs) that
// returned at most this many bytes, into a buffer it did not fill, reached
// EOF. The kernel's seq_file read (seq_read_iter) stops adding records
// before EOF only when the caller's buffer is full or the next record does
// not fit in its own buffer, which is at least a page (4,096 bytes); a
// cgroup.procs record is a PID and a newline, at most 8 bytes (PID_MAX_LIMIT
// is 4,194,304). So a short read below a page less one record needs no
// second read to find EOF. (A regular file, as in test fixtures, returns a
// short read only at EOF anyway.)
const seqEOFBelow = 4096 - 8

// preadAll reads fd from offset 0 into *buf, growing it as needed. A
// cgroup file other than cgroup.procs is one seq_file record, so a read
// shorter than the buffer is the whole file; cgroup.procs is one record
// per process, so it is read until EOF, which a short read below
// seqEOFBelow already is: most containers' cgroup.procs takes one read.
func preadAll(fd int, buf *[]byte, multiRecord bool) ([]byte, error) {
	b := *buf
	if len(b) == 0 {
		b = make([]byte, 8<<10)
		*buf = b
	}
	n := 0
	for {
		m, err := preadNoSched(fd, b[n:], int64(n))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		n += m
		if m == 0 || (n < len(b) && (!multiRecord || m <= seqEOFBelow)) {
			return b[:n], nil
		}
		if n == len(b) {
			if len(b) >= maxFileSize {
				return nil, fmt.Errorf("%w: larger than %d bytes", ErrParse, maxFileSize)
			}
			nb := make([]byte, 2*len(b))
			copy(nb, b[:n])
			b = nb
			*buf = b
		}
	}
}

// Created returns when the cgroup was made, as cAdvisor tells it: the
// earlier of the directory's and its cgroup.events file's modification
// times. (A cgroup directory's mtime is its creation time until something
// changes its attributes; cgroup.events is never written by user space.)
// The root has no cgroup.events; its directory time is used.
func (g *Group) Created() (time.Time, error) {
	var st unix.Stat_t
	dir := g.Dir()
	if err := unix.Stat(dir, &st); err != nil {
		if vanished(err) {
			return time.Time{}, fmt.Errorf("%s: %w", dir, ErrVanished)
		}
		return time.Time{}, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	t := time.Unix(st.Mtim.Unix())
	if err := unix.Stat(dir+"/cgroup.events", &st); err == nil {
		if e := time.Unix(st.Mtim.Unix()); e.Before(t) {
			t = e
		}
	}
	return t, nil
}
