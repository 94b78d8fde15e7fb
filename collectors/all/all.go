// Package all registers every collector nodeagent ships: importing it for
// its side effects fills the collectors registry. Each layer package
// registers its own collectors in init, so adding a collector touches its
// own package only, and adding a layer package one import line here.
package all

import (
	// The container layer: container_* and machine_* from cgroup v2.
	_ "github.com/nodeagent/nodeagent/collectors/cadvisor"
	// The kubelet layer: passthrough of the kubelet's metrics paths, and
	// the security checks of the node's kubelet.
	_ "github.com/nodeagent/nodeagent/collectors/kubelet"
	// The host layer (node_exporter's node_* families), in three packages:
	// system and hardware, storage, network.
	_ "github.com/nodeagent/nodeagent/collectors/node"
	_ "github.com/nodeagent/nodeagent/collectors/node/network"
	_ "github.com/nodeagent/nodeagent/collectors/node/storage"
)
