// Package network holds the host layer's network collectors:
// node_exporter-compatible node_* families of interfaces (netdev, netclass,
// bonding, InfiniBand), the kernel's network stack (netstat, sockstat,
// softnet, UDP queues, ARP), IPVS and connection tracking.
//
// One file per collector, registered in its init; see package node for the
// conventions all host collectors follow.
package network
