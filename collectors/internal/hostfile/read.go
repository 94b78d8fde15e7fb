package hostfile

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// This file holds the small readers the host collectors need for /proc and
// /sys files that procfs does not parse.

// sysfsReadLimit caps one read of a sysfs attribute; attributes are a page
// at most, the ones we read a few bytes.
const sysfsReadLimit = 4096

// openPlain opens path for reading with open(2) alone: os.Open would also
// register the descriptor with the network poller (sysfs and procfs files
// accept epoll), three system calls more per file.
func openPlain(path string) (int, error) {
	for {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// FileVersion identifies one version of a regular file: writers that
// replace a file by renaming a new one over it (udevd, package managers)
// change its inode, and those that rewrite it in place change its size or
// mtime. Comparable with ==.
type FileVersion struct {
	ino, size, mtime int64
}

// StatVersion returns path's FileVersion; its error is os.Stat's.
func StatVersion(path string) (FileVersion, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return FileVersion{}, err
	}
	v := FileVersion{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		v.ino = int64(st.Ino)
	}
	return v, nil
}

// ReadSysfsAttr reads a sysfs attribute with a single read(2), without the
// retry loop of os.ReadFile: some hwmon drivers answer EAGAIN forever, and
// a read must then fail rather than spin. Trailing newlines are cut. The
// file is opened with openPlain.
func ReadSysfsAttr(path string) (string, error) {
	fd, err := openPlain(path)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	var b [sysfsReadLimit]byte
	n, err := unix.Read(fd, b[:])
	if err != nil {
		return "", &os.PathError{Op: "read", Path: path, Err: err}
	}
	return strings.TrimRight(string(b[:max(n, 0)]), "\n"), nil
}

// ReadUintFile reads a file holding one unsigned decimal number, as the
// kernel writes counters in /proc/sys and /sys, opened with openPlain and
// read into a buffer on the stack; a file longer than a number is an error.
func ReadUintFile(path string) (uint64, error) {
	fd, err := openPlain(path)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	var b [64]byte
	n := 0
	for n < len(b) {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			break
		}
		n += m
	}
	if n == len(b) {
		return 0, fmt.Errorf("parsing %s: more than a number", path)
	}
	v, err := ParseUint(b[:n])
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", path, err)
	}
	return v, nil
}

// ParseUint parses one unsigned decimal number surrounded by optional
// white space.
func ParseUint(b []byte) (uint64, error) {
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// procMaxFileBytes bounds the /proc files parsed here; the largest of them
// (/proc/net/netstat) is a few KiB.
const procMaxFileBytes = 1 << 20

// ReadProcFile reads a small /proc file whole, capped at procMaxFileBytes.
func ReadProcFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, procMaxFileBytes))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}

// ParseFloat parses a number as strconv.ParseFloat does, without
// allocating for the decimal integers that /proc's counters are: an
// integer of up to 19 digits converts to the float64 ParseFloat gives
// (both round to nearest even), anything else goes to ParseFloat.
func ParseFloat(b []byte) (float64, error) {
	digits, neg := b, false
	if len(digits) > 0 && (digits[0] == '-' || digits[0] == '+') {
		neg, digits = digits[0] == '-', digits[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return strconv.ParseFloat(string(b), 64)
	}
	var u uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return strconv.ParseFloat(string(b), 64)
		}
		u = u*10 + uint64(c-'0')
	}
	if neg {
		return -float64(u), nil
	}
	return float64(u), nil
}

// Fields appends line's fields, separated by ASCII white space, to dst and
// returns it: bytes.Fields for /proc's ASCII tables, without allocating
// when dst has room (a caller's array, reused line after line).
func Fields(line []byte, dst [][]byte) [][]byte {
	start := -1
	for i, c := range line {
		if c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' {
			if start >= 0 {
				dst = append(dst, line[start:i])
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		dst = append(dst, line[start:])
	}
	return dst
}
