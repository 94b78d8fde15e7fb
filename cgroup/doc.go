// Package cgroup finds container cgroups in a cgroup v2 hierarchy and reads
// their kernel files.
//
// It is shaped like procfs: an FS made from a validated root path
// (NewFS refuses cgroup v1 and hybrid roots with the fix in the message),
// one file per kernel file (cpu.stat → cpu_stat.go) with a result type named
// after it and an unexported parser over bytes, and a Group that reads one
// cgroup's files.
//
// Walk lists and classifies every cgroup once per scrape: the root, the
// kubepods and QoS-class slices, pod cgroups (pod UID recovered from the
// systemd and the cgroupfs drivers' names), container leaves (containerd,
// CRI-O and Docker scopes; CRI-O's conmon scopes are skipped) and host
// cgroups (system.slice/<unit>.service, init.scope, user.slice/...).
//
// A Group keeps the descriptors of the files it reads open across scrapes
// and re-reads them from offset 0, because on the kernel's cgroupfs an
// open+read+close costs several times a pread on an open descriptor
// (docs/performance.md has the numbers). containerd/cgroups' StatFiltered
// opens, reads and closes every file on every call, treats absent files as
// zero and swallows parse errors, so the hot path reads the files itself.
package cgroup
