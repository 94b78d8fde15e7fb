package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNoSchedCalls: the hot path's system calls do what unix' wrappers
// do, errors included.
func TestNoSchedCalls(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cpu.stat"), []byte("usage_usec 42\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)

	fd, err := openatNoSched(dirfd, "cpu.stat")
	if err != nil {
		t.Fatal(err)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("descriptor flags %#x, %v: want close-on-exec", flags, err)
	}
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_ACCMODE != unix.O_RDONLY {
		t.Errorf("file flags %#x, %v: want read-only", fl, err)
	}
	buf := make([]byte, 64)
	for _, tc := range []struct {
		off  int64
		size int
		want string
	}{{0, 64, "usage_usec 42\n"}, {6, 64, "usec 42\n"}, {0, 5, "usage"}, {14, 64, ""}, {0, 0, ""}} {
		n, err := preadNoSched(fd, buf[:tc.size], tc.off)
		if err != nil || string(buf[:n]) != tc.want {
			t.Errorf("pread of %d bytes at %d: %q, %v; want %q", tc.size, tc.off, buf[:n], err, tc.want)
		}
	}
	if err := closeNoSched(fd); err != nil {
		t.Errorf("close: %v", err)
	}
	if err := closeNoSched(fd); !errors.Is(err, unix.EBADF) {
		t.Errorf("second close: %v, want EBADF", err)
	}
	if _, err := preadNoSched(fd, buf, 0); !errors.Is(err, unix.EBADF) {
		t.Errorf("pread of a closed descriptor: %v, want EBADF", err)
	}
	if fd, err := openatNoSched(dirfd, "memory.stat"); !errors.Is(err, unix.ENOENT) || fd != -1 {
		t.Errorf("open of a missing file: %d, %v; want -1, ENOENT", fd, err)
	}
	if _, err := openatNoSched(dirfd, "cpu.stat\x00x"); err == nil {
		t.Error("open of a name with a NUL: no error")
	}
}
