package hostfile

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// This file holds the small readers the host collectors need for /proc and
// /sys files that procfs does not parse.

// sysfsReadLimit caps one read of a sysfs attribute; attributes are a page
// at most, the ones we read a few bytes.
const sysfsReadLimit = 4096

// ReadSysfsAttr reads a sysfs attribute with a single read(2), without the
// retry loop of os.ReadFile: some hwmon drivers answer EAGAIN forever, and
// a read must then fail rather than spin. Trailing newlines are cut.
func ReadSysfsAttr(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, sysfsReadLimit)
	n, err := unix.Read(int(f.Fd()), b)
	if err != nil {
		return "", &os.PathError{Op: "read", Path: path, Err: err}
	}
	return strings.TrimRight(string(b[:max(n, 0)]), "\n"), nil
}

// ReadUintFile reads a file holding one unsigned decimal number, as the
// kernel writes counters in /proc/sys and /sys.
func ReadUintFile(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := ParseUint(b)
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
