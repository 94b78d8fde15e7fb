// Package node holds the host layer's system and hardware collectors:
// node_exporter-compatible node_* families of the CPU, memory, kernel,
// clocks, operating system and hardware sensors, read from /proc, /sys and
// the root filesystem through procfs. Its sibling packages node/storage and
// node/network hold the disk and filesystem, and the network collectors.
//
// Each file is one collector, registered in its init with its layer, its
// default and its own flags; every metric name is written in full where it
// is emitted. Names, types, help, labels and units are node_exporter 1.12's,
// proven by the golden cases in testdata/ and TestNodeExporterConformance.
package node
