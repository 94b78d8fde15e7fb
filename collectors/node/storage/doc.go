// Package storage holds the host layer's storage collectors:
// node_exporter-compatible node_* families of block devices (diskstats,
// NVMe, tape, Fibre Channel, device-mapper multipath), software RAID and
// caches (mdadm, bcache), and filesystems (mounted filesystems' statfs,
// Btrfs, bcachefs, XFS, ZFS, the NFS client and server).
//
// One file per collector, registered in its init; see package node for the
// conventions all host collectors follow.
package storage
