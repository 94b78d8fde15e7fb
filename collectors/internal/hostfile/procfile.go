package hostfile

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// ProcFile reads one small /proc file, capped at procMaxFileBytes, through
// a descriptor kept open between scrapes: procfs' seq files and sysctls
// render their content anew for a read from offset 0, so a scrape costs
// one or two pread(2)s instead of openat, the Go runtime's poller
// registration, reads and close. The descriptor is a plain one from
// golang.org/x/sys/unix, outside the network poller. A file that is not
// on procfs (a fixture tree) is read by path every time, so that a file
// replaced by rename is seen.
type ProcFile struct {
	path string
	mu   sync.Mutex
	fd   int  // -1 until opened
	keep bool // false once the file is known not to be on procfs
	buf  []byte
}

// NewProcFile returns a reader of path; nothing is opened before Read.
func NewProcFile(path string) *ProcFile { return &ProcFile{path: path, fd: -1, keep: true} }

// Path is the file read.
func (f *ProcFile) Path() string { return f.path }

// Read returns the file's current content. Errors name the file and wrap
// the system call's (fs.ErrNotExist for a file that is not there).
func (f *ProcFile) Read() ([]byte, error) {
	var out []byte
	err := f.ReadFunc(func(b []byte) error {
		out = append([]byte(nil), b...)
		return nil
	})
	return out, err
}

// ReadFunc calls fn with the file's current content, in the reader's own
// buffer: valid only until fn returns, which saves Read's copy for a
// caller that parses the content there. fn's error is returned as it is.
func (f *ProcFile) ReadFunc(fn func(b []byte) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, err := f.read()
	if err != nil {
		return err
	}
	return fn(b)
}

// Whole says whether content returned by a ProcFile or ReadProcFile is the
// whole file, not cut at the size bound.
func Whole(b []byte) bool { return len(b) < procMaxFileBytes }

// read reads the file into f.buf (or, off procfs, a new buffer).
func (f *ProcFile) read() ([]byte, error) {
	if !f.keep {
		return ReadProcFile(f.path)
	}
	if f.fd < 0 {
		fd, err := unix.Open(f.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", f.path, err)
		}
		var st unix.Statfs_t
		if err := unix.Fstatfs(fd, &st); err != nil || st.Type != unix.PROC_SUPER_MAGIC {
			_ = unix.Close(fd)
			f.keep = false
			return ReadProcFile(f.path)
		}
		f.fd = fd
		f.buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(f.buf) {
			if len(f.buf) >= procMaxFileBytes {
				break
			}
			f.buf = append(f.buf, make([]byte, len(f.buf))...)
		}
		m, err := unix.Pread(f.fd, f.buf[n:], int64(n))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Reopen on the next scrape rather than keep a descriptor
			// that failed.
			_ = unix.Close(f.fd)
			f.fd = -1
			return nil, fmt.Errorf("reading %s: %w", f.path, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	return f.buf[:n], nil
}

// Close closes the kept descriptor, if any.
func (f *ProcFile) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fd >= 0 {
		_ = unix.Close(f.fd)
		f.fd = -1
	}
}
