package storage

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

// btrfsIoctlDevice is what the btrfs ioctls report about one device of a
// mounted filesystem: sysfs has its size but neither its use nor its error
// counters.
type btrfsIoctlDevice struct {
	path       string // as the kernel knows it: /dev/sda1
	uuid       string // the device's UUID, dashed like node_exporter's
	bytesUsed  uint64
	totalBytes uint64
	// errs are the persistent device statistics, in node_exporter's
	// order: write, read, flush, corruption, generation.
	errs [5]uint64
}

// btrfsDeviceReader reads the devices of the btrfs filesystem mounted at
// mountPath and its FSID as 32 hex digits (the sysfs UUID without dashes).
// The production reader issues ioctls; tests substitute their own.
type btrfsDeviceReader interface {
	devices(mountPath string) (fsid string, devs []btrfsIoctlDevice, err error)
}

// The ioctls of include/uapi/linux/btrfs.h, as _IOR/_IOWR(0x94, nr, size).
const (
	btrfsIocFsInfo      = 0x8400941f // _IOR(0x94, 31, struct btrfs_ioctl_fs_info_args), 1024 bytes
	btrfsIocDevInfo     = 0xd000941e // _IOWR(0x94, 30, struct btrfs_ioctl_dev_info_args), 4096 bytes
	btrfsIocGetDevStats = 0xc4089434 // _IOWR(0x94, 52, struct btrfs_ioctl_get_dev_stats), 1032 bytes

	btrfsFsInfoSize      = 1024
	btrfsDevInfoSize     = 4096
	btrfsGetDevStatsSize = 1032
	btrfsDevStatValues   = 5 // BTRFS_DEV_STAT_VALUES_MAX
)

// ioctlBtrfs is the production btrfsDeviceReader. It needs read access to
// the mount point and CAP_SYS_ADMIN for BTRFS_IOC_DEV_INFO and
// BTRFS_IOC_GET_DEV_STATS.
type ioctlBtrfs struct{}

func (ioctlBtrfs) devices(mountPath string) (string, []btrfsIoctlDevice, error) {
	f, err := os.Open(mountPath)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	fd := f.Fd()

	info := make([]byte, btrfsFsInfoSize)
	if err := ioctl(fd, btrfsIocFsInfo, info); err != nil {
		return "", nil, fmt.Errorf("BTRFS_IOC_FS_INFO on %s: %w", mountPath, err)
	}
	maxID, numDevices, fsid := decodeBtrfsFsInfo(info)

	var devs []btrfsIoctlDevice
	// Device IDs start at 1 usually but not always, and have holes after a
	// device is removed: probe up to max_id, skipping ENODEV.
	for id := uint64(0); id <= maxID && uint64(len(devs)) < numDevices; id++ {
		devInfo := make([]byte, btrfsDevInfoSize)
		binary.NativeEndian.PutUint64(devInfo[0:8], id)
		err := ioctl(fd, btrfsIocDevInfo, devInfo)
		if errors.Is(err, syscall.ENODEV) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("BTRFS_IOC_DEV_INFO for device %d on %s: %w", id, mountPath, err)
		}
		stats := make([]byte, btrfsGetDevStatsSize)
		binary.NativeEndian.PutUint64(stats[0:8], id)
		binary.NativeEndian.PutUint64(stats[8:16], btrfsDevStatValues)
		if err := ioctl(fd, btrfsIocGetDevStats, stats); err != nil {
			return "", nil, fmt.Errorf("BTRFS_IOC_GET_DEV_STATS for device %d on %s: %w", id, mountPath, err)
		}
		devs = append(devs, decodeBtrfsDevice(devInfo, stats))
	}
	return fsid, devs, nil
}

func ioctl(fd uintptr, req uintptr, arg []byte) error {
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, uintptr(unsafe.Pointer(&arg[0])))
	if errno != 0 {
		return errno
	}
	return nil
}

// decodeBtrfsFsInfo reads struct btrfs_ioctl_fs_info_args: max_id u64,
// num_devices u64, fsid [16]u8, ...
func decodeBtrfsFsInfo(b []byte) (maxID, numDevices uint64, fsid string) {
	return binary.NativeEndian.Uint64(b[0:8]), binary.NativeEndian.Uint64(b[8:16]), hex.EncodeToString(b[16:32])
}

// decodeBtrfsDevice reads struct btrfs_ioctl_dev_info_args (devid u64,
// uuid [16]u8, bytes_used u64, total_bytes u64, fsid [16]u8, unused
// [377]u64, path [1024]u8) and struct btrfs_ioctl_get_dev_stats (devid u64,
// nr_items u64, flags u64, values [5]u64, ...).
func decodeBtrfsDevice(devInfo, stats []byte) btrfsIoctlDevice {
	d := btrfsIoctlDevice{
		uuid:       btrfsDevUUID(devInfo[8:24]),
		bytesUsed:  binary.NativeEndian.Uint64(devInfo[24:32]),
		totalBytes: binary.NativeEndian.Uint64(devInfo[32:40]),
		path:       cString(devInfo[3072:4096]),
	}
	// nr_items comes back as the number of values the kernel filled.
	n := min(binary.NativeEndian.Uint64(stats[8:16]), btrfsDevStatValues)
	for i := range n {
		d.errs[i] = binary.NativeEndian.Uint64(stats[24+8*i:])
	}
	return d
}

// btrfsDevUUID formats a device UUID as node_exporter's btrfs library does:
// lower-case 8-4-4-4-12, and "<zero>" for the all-zero UUID.
func btrfsDevUUID(b []byte) string {
	zero := true
	for _, c := range b {
		zero = zero && c == 0
	}
	if zero {
		return "<zero>"
	}
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
