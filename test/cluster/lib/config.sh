# Settings of the cluster harness. Every one can be overridden from the
# environment; cluster.sh sources this file before the others.

# State (certificates, logs, pid files, etcd and containerd data, the env
# file) and the build cache, kept apart so that `down --purge` never costs a
# rebuild.
CLUSTER_DIR=${CLUSTER_DIR:-/tmp/nodeagent-cluster}
CLUSTER_CACHE=${CLUSTER_CACHE:-/var/cache/nodeagent-cluster}

# Pinned versions of everything the harness builds from the Go module proxy.
# The Kubernetes binaries come from k8s.io/kubernetes with each of its
# staging modules replaced by the published k8s.io/* release of the same
# minor (1.37.2 -> v0.37.2).
K8S_VERSION=${K8S_VERSION:-1.37.2}
ETCD_VERSION=${ETCD_VERSION:-3.7.3}
KSM_VERSION=${KSM_VERSION:-2.19.1}
# github.com/prometheus/prometheus tags Prometheus 3.x as v0.3xx.y.
PROMETHEUS_VERSION=${PROMETHEUS_VERSION:-0.316.0}
PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-0.85.0}

# Loopback ports: a block of 17xxx so that a real kubelet (10250), etcd
# (2379) or nodeagent (9812/9813) on the same machine is never in the way.
KUBELET_PORT=${KUBELET_PORT:-17250}
KUBELET_HEALTHZ_PORT=${KUBELET_HEALTHZ_PORT:-17248}
APISERVER_PORT=${APISERVER_PORT:-17443}
ETCD_PORT=${ETCD_PORT:-17379}              # client; peer is +1, metrics +2
CONTROLLER_MANAGER_PORT=${CONTROLLER_MANAGER_PORT:-17257}
SCHEDULER_PORT=${SCHEDULER_PORT:-17259}
KSM_PORT=${KSM_PORT:-17080}                # telemetry is +1
PROMETHEUS_PORT=${PROMETHEUS_PORT:-17090}
PROMETHEUS_OPERATOR_PORT=${PROMETHEUS_OPERATOR_PORT:-17082}
# The Prometheus of TestNodeagentEndToEnd, which runs on the operator's
# configuration beside the one on PROMETHEUS_PORT.
NODEAGENT_PROMETHEUS_PORT=${NODEAGENT_PROMETHEUS_PORT:-17091}
# containerd's metrics on loopback. Not in the 17xxx block: 1338 is where
# containerd's documentation puts it, and where nodeagent's runtime
# collector looks for it when no --runtime.metrics-url is given, so the
# DaemonSet finds it as it would on a real node.
CONTAINERD_METRICS_PORT=${CONTAINERD_METRICS_PORT:-1338}
# The kubelet's unauthenticated read-only port: 0 (off) unless
# `cluster.sh start-kubelet --read-only-port 10255` turns it on, for the
# tests of nodeagent's read-only port check. Remembered in RUN/readonly-port
# so that a later restart keeps it.
KUBELET_READONLY_PORT=${KUBELET_READONLY_PORT:-}

NODE_NAME=${CLUSTER_NODE_NAME:-nodeagent-node}

# cluster mode's pod network: a bridge on the host whose address is also the
# node's InternalIP, and a Service range that nothing routes (no
# kube-proxy): the harness points it at a blackhole route so that a client
# that tries it fails at once instead of leaving the machine.
POD_BRIDGE=${CLUSTER_POD_BRIDGE:-nacluster0}
POD_SUBNET=${CLUSTER_POD_SUBNET:-10.213.0.0/24}
NODE_IP=${CLUSTER_NODE_IP:-10.213.0.1}
SERVICE_SUBNET=${CLUSTER_SERVICE_SUBNET:-10.214.0.0/24}
SERVICE_IP=${CLUSTER_SERVICE_IP:-10.214.0.1}   # the first address of SERVICE_SUBNET: Service "kubernetes"

# The image every pod of the harness runs, imported from a local tarball so
# that nothing is ever pulled.
PAUSE_IMAGE=registry.k8s.io/pause:3.10
CNI_BIN_DIR=${CNI_BIN_DIR:-/usr/lib/cni}

# Debian packages the harness runs: containerd, runc, the CNI plugins,
# openssl for the certificates, curl for health checks, util-linux for
# unshare/nsenter, iproute2 for the pod bridge.
APT_PACKAGES="containerd runc containernetworking-plugins openssl curl util-linux iproute2"

# Derived paths.
BIN=$CLUSTER_CACHE/bin
SRC=$CLUSTER_CACHE/src
PKI=$CLUSTER_DIR/pki
RUN=$CLUSTER_DIR/run
LOGS=$CLUSTER_DIR/logs
STATE=$CLUSTER_DIR/state
TOKENS=$CLUSTER_DIR/tokens
CONTAINERD_SOCK=$RUN/containerd.sock
ENV_FILE=$CLUSTER_DIR/env
