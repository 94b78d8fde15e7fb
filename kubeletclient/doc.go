// Package kubeletclient talks to the kubelet: an authenticated client for
// its port 10250 (transport, auth, status and capped bodies), pure decoders
// of what it returns (pod metadata from /pods), and the probe of its
// unauthenticated read-only port.
package kubeletclient
