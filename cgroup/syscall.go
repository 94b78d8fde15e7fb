package cgroup

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls of a scrape's hot path, opening, reading and closing
// each cgroup's files (~15,000 files and ~29,500 calls a scrape at 1,000
// containers), are made without the Go scheduler's system-call
// bookkeeping. unix.Pread and the like tell the runtime that the thread
// may block; once a call has taken 20 µs the runtime's monitor hands the
// thread's P to another thread, which it wakes, and the first thread must
// get a P back when the call returns. A cgroup file is rendered by the
// kernel as it is read, and on a machine where a system call is expensive
// most reads of a 1,000-container scrape took that long: 740 context
// switches and 355 nanosleeps of the runtime's monitor per scrape,
// against 190–215 and 83–96 without the bookkeeping, which saves 5 % of
// the scrape's CPU at 1,000 containers and 10 % at 2,000
// (docs/performance.md).
//
// The price: a thread in one of these calls keeps its P, and a stop of the
// world for the GC waits for the call to return. Reads of cgroup files
// compute their answer and return; none waits on anything that user space
// holds. The directory walk, inotify and everything else go through the
// usual wrappers.

// preadNoSched is unix.Pread without the scheduler's bookkeeping.
func preadNoSched(fd int, p []byte, offset int64) (int, error) {
	if unsafe.Sizeof(uintptr(0)) < 8 {
		// 32-bit ABIs split the offset over two registers, each their
		// own way; nodeagent ships 64-bit builds only.
		return unix.Pread(fd, p, offset)
	}
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := unix.RawSyscall6(unix.SYS_PREAD64, uintptr(fd), uintptr(ptr), uintptr(len(p)), uintptr(offset), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// openatNoSched is unix.Openat, read-only and close-on-exec, without the
// scheduler's bookkeeping.
func openatNoSched(dirfd int, name string) (int, error) {
	p, err := unix.BytePtrFromString(name)
	if err != nil {
		return -1, err
	}
	fd, _, errno := unix.RawSyscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(p)), uintptr(unix.O_RDONLY|unix.O_CLOEXEC), 0, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(fd), nil
}

// closeNoSched is unix.Close without the scheduler's bookkeeping.
func closeNoSched(fd int) error {
	if _, _, errno := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0); errno != 0 {
		return errno
	}
	return nil
}
