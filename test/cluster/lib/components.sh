# Starting and stopping the harness's processes. Each runs in the mount
# namespace, in its own session, with its pid in RUN/NAME.pid and its
# output in LOGS/NAME.log.

# comm_of PROGRAM: the kernel's 15-character name of the process.
comm_of() { local b=${1##*/}; echo "${b:0:15}"; }

# spawn NAME PROGRAM ARGS...: start PROGRAM (nsenter execs it, so the pid
# is the program's own), and return once it runs as PROGRAM.
spawn() {
  local name=$1 want pid i
  shift
  want=$(comm_of "$1")
  mkdir -p "$LOGS"
  printf '\n==== %s %s\n' "$(date -u +%FT%TZ)" "$*" >>"$LOGS/$name.log"
  # 8>&- 9>&-: a daemon must not hold the harness's locks.
  setsid nsenter -t "$(ns_pid)" -m --wd="$CLUSTER_DIR" -- "$@" </dev/null >>"$LOGS/$name.log" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$RUN/$name.pid"
  # setsid and then nsenter exec the program: until they have, the process
  # bears their names, and pid_alive (which checks the name, so that a
  # recycled pid is never taken for ours) would call it dead. A start
  # that checked at once failed with "kubelet exited" while the kubelet was
  # still being exec'd, and left it running.
  for ((i = 0; i < 50; i++)); do
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$want" ] && return 0
    [ -d "/proc/$pid" ] || return 0
    sleep 0.1
  done
}

# stop_process NAME COMM: SIGTERM, and SIGKILL after 15 s, if the recorded
# pid is still that program; returns once the process is gone, so that a
# start right after it finds its ports free.
stop_process() {
  local pid i
  if pid_alive "$1" "$2"; then
    pid=$(<"$RUN/$1.pid")
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 30; i++)); do
      [ -d "/proc/$pid" ] || break
      sleep 0.5
    done
    if [ -d "/proc/$pid" ]; then
      kill -KILL "$pid" 2>/dev/null
      # SIGKILL is not instant either (a process in uninterruptible sleep
      # dies when it wakes).
      for ((i = 0; i < 20; i++)); do
        [ -d "/proc/$pid" ] || break
        sleep 0.5
      done
    fi
    [ -d "/proc/$pid" ] && say "warning: $1 ($pid) is still there after SIGKILL"
    say "stopped $1 ($pid)"
  fi
  rm -f "$RUN/$1.pid"
}

# port_free PORT: nothing listens on 127.0.0.1:PORT (ss from iproute2).
port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# wait_ports_free SECONDS PORT...: a restarted server must not race its
# predecessor's sockets (the old kubelet still answering /healthz would
# pass the new one's health check, and the new one would then fail to bind).
wait_ports_free() {
  local secs=$1 p
  shift
  for p in "$@"; do
    [ "$p" = 0 ] && continue
    wait_for "$secs" "port $p" port_free "$p" || fail "127.0.0.1:$p is still in use; ss -ltnp names the process"
  done
}

# alive_or_fail NAME COMM: the process has not died during start-up.
alive_or_fail() { pid_alive "$1" "$2" || fail "$1 exited; the end of $LOGS/$1.log says why"; }

# https_ok URL [CURL ARGS]: URL answers 200 with the admin certificate.
https_ok() {
  local url=$1
  shift
  curl -sf -o /dev/null --max-time 3 --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@" "$url"
}

# ---- etcd, kube-apiserver, kube-controller-manager, kube-scheduler

start_etcd() {
  pid_alive etcd etcd && return 0
  mkdir -p "$STATE/etcd" && chmod 700 "$STATE/etcd"
  local client=http://127.0.0.1:$ETCD_PORT peer=http://127.0.0.1:$((ETCD_PORT + 1))
  spawn etcd "$BIN/etcd" --name harness --data-dir "$STATE/etcd" \
    --listen-client-urls "$client" --advertise-client-urls "$client" \
    --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" --initial-cluster "harness=$peer" \
    --listen-metrics-urls "http://127.0.0.1:$((ETCD_PORT + 2))" --unsafe-no-fsync
  wait_for 30 etcd curl -sf "$client/health" || { alive_or_fail etcd etcd; fail "etcd is not healthy, see $LOGS/etcd.log"; }
}

start_apiserver() {
  if ! pid_alive apiserver kube-apiserver; then
    # No endpoint reconciler: it would publish 127.0.0.1 as the endpoint
    # of Service "kubernetes", which no pod can reach anyway.
    spawn apiserver "$BIN/kube-apiserver" \
      --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
      --bind-address=127.0.0.1 --secure-port="$APISERVER_PORT" --advertise-address=127.0.0.1 \
      --endpoint-reconciler-type=none --service-cluster-ip-range="$SERVICE_SUBNET" \
      --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --cert-dir="$STATE/apiserver" \
      --client-ca-file="$PKI/ca.crt" \
      --service-account-issuer=https://kubernetes.default.svc.cluster.local \
      --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
      --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --allow-privileged=true \
      --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
      --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=Hostname
  fi
  local i
  for ((i = 0; i < 240; i++)); do
    https_ok "https://127.0.0.1:$APISERVER_PORT/readyz" && return 0
    alive_or_fail apiserver kube-apiserver
    sleep 0.5
  done
  fail "kube-apiserver is not ready after 120 s, see $LOGS/apiserver.log"
}

# bootstrap: the tests' ServiceAccounts, their ClusterRole and tokens.
bootstrap() {
  "$BIN/clustertool" bootstrap -kubeconfig "$PKI/admin.kubeconfig" -tokens "$TOKENS" || fail "bootstrap of the ServiceAccounts failed"
}

start_controller_manager() {
  pid_alive controller-manager kube-controller-manager && return 0
  local k=$PKI/controller-manager.kubeconfig
  spawn controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$k" --authentication-kubeconfig="$k" --authorization-kubeconfig="$k" \
    --bind-address=127.0.0.1 --secure-port="$CONTROLLER_MANAGER_PORT" --cert-dir="$STATE/controller-manager" \
    --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key"
}

start_scheduler() {
  pid_alive scheduler kube-scheduler && return 0
  local k=$PKI/scheduler.kubeconfig
  spawn scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$k" --authentication-kubeconfig="$k" --authorization-kubeconfig="$k" \
    --bind-address=127.0.0.1 --secure-port="$SCHEDULER_PORT" --cert-dir="$STATE/scheduler" --leader-elect=false
}

wait_control_plane() {
  wait_for 60 controller-manager curl -skf "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz" ||
    { alive_or_fail controller-manager kube-controller; fail "kube-controller-manager is not healthy, see $LOGS/controller-manager.log"; }
  wait_for 60 scheduler curl -skf "https://127.0.0.1:$SCHEDULER_PORT/healthz" ||
    { alive_or_fail scheduler kube-scheduler; fail "kube-scheduler is not healthy, see $LOGS/scheduler.log"; }
}

# ---- the pod network (cluster mode)

# start_pod_network: the bridge the CNI plugin attaches pods to, made
# before the kubelet so that its address can be the node's InternalIP, the
# CNI configuration, and the blackhole route for the Service range.
start_pod_network() {
  if ! ip link show "$POD_BRIDGE" >/dev/null 2>&1; then
    ip link add "$POD_BRIDGE" type bridge || fail "cannot add bridge $POD_BRIDGE"
    echo "link $POD_BRIDGE" >>"$RUN/created-net"
  fi
  ip addr replace "$NODE_IP/${POD_SUBNET#*/}" dev "$POD_BRIDGE"
  ip link set "$POD_BRIDGE" up
  if ! ip route show type blackhole | grep -q "^blackhole $SERVICE_SUBNET"; then
    ip route add blackhole "$SERVICE_SUBNET" || fail "cannot add the blackhole route for $SERVICE_SUBNET"
    echo "route $SERVICE_SUBNET" >>"$RUN/created-net"
  fi
  mkdir -p "$STATE/cni-conf" "$STATE/cni-ipam"
  cat >"$STATE/cni-conf/10-nodeagent-harness.conflist" <<EOC
{
  "cniVersion": "1.0.0",
  "name": "nodeagent-harness",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$POD_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$STATE/cni-ipam",
        "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOC
}

stop_pod_network() {
  rm -rf "$STATE/cni-conf" "$STATE/cni-ipam" # no pod survives down, nor its address
  [ -s "$RUN/created-net" ] || return 0
  local kind what
  while read -r kind what; do
    case $kind in
      link) ip link del "$what" 2>/dev/null && say "removed bridge $what" ;;
      route) ip route del blackhole "$what" 2>/dev/null && say "removed route blackhole $what" ;;
    esac
  done <"$RUN/created-net"
  rm -f "$RUN/created-net"
}

# ---- containerd and the kubelet

ctr_() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }

write_containerd_config() {
  mkdir -p "$STATE/cni-conf"
  # [metrics] on loopback: containerd's own families (containerd_*, the
  # tasks' container_*) for nodeagent's /metrics/runtime, as docs/sources.md
  # tells users to turn them on.
  # restrict_oom_score_adj: the kubelet asks for negative OOM scores, which
  # need CAP_SYS_RESOURCE, missing in some sandboxes (and not wanted on a
  # developer's machine): they are raised to containerd's own score.
  cat >"$STATE/containerd.toml" <<EOC
version = 2
root = "$STATE/containerd"
state = "$STATE/containerd-state"
[grpc]
  address = "$CONTAINERD_SOCK"
[metrics]
  address = "127.0.0.1:$CONTAINERD_METRICS_PORT"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$STATE/cni-conf"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$STATE/runc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd-opt"
EOC
}

start_containerd() {
  if ! pid_alive containerd containerd; then
    write_containerd_config
    rm -f "$CONTAINERD_SOCK"
    spawn containerd containerd --config "$STATE/containerd.toml"
    wait_for 30 containerd ctr_ version || { alive_or_fail containerd containerd; fail "containerd does not answer, see $LOGS/containerd.log"; }
  fi
  # The image: rebuilt from this checkout's podprogram, imported when its
  # digest changed.
  "$BIN/clustertool" image -binary "$BIN/podprogram" -path /pause -ref "$PAUSE_IMAGE" -o "$RUN/pause.tar.new" || fail "cannot build the pod image"
  if ! cmp -s "$RUN/pause.tar.new" "$RUN/pause.tar" || ! ctr_ images ls -q | grep -qx "$PAUSE_IMAGE"; then
    ctr_ images import "$RUN/pause.tar.new" >/dev/null || fail "cannot import the pod image into containerd"
  fi
  mv "$RUN/pause.tar.new" "$RUN/pause.tar"
}

write_kubelet_config() {
  local webhook=false authz=AlwaysAllow
  if [ "$MODE" != kubelet ]; then webhook=true authz=Webhook; fi
  mkdir -p "$STATE/manifests" "$STATE/pod-logs"
  cat >"$STATE/kubelet.yaml" <<EOC
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
# 0 (off) unless start-kubelet --read-only-port asked for it (the tests of
# nodeagent's read-only port check).
readOnlyPort: $(readonly_port)
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: $webhook}
  x509: {clientCAFile: $PKI/ca.crt}
authorization:
  mode: $authz
# This host mounts cgroup v1 controllers with a cgroup2 hierarchy beside
# them; pod cgroups go to every hierarchy, /sys/fs/cgroup/unified too.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
staticPodPath: $STATE/manifests
podLogsDir: $STATE/pod-logs
# Check the kernel settings (the namespace shows the wanted values), never
# write them; no iptables chains on the host.
protectKernelDefaults: true
makeIPTablesUtilChains: false
# The only image is imported, never pulled: never collect it, and no disk
# pressure taint on a full developer disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
EOC
}

# readonly_port: the kubelet's read-only port, KUBELET_READONLY_PORT or
# what the last start-kubelet asked for, else 0.
readonly_port() {
  if [ -n "$KUBELET_READONLY_PORT" ]; then echo "$KUBELET_READONLY_PORT"; else cat "$RUN/readonly-port" 2>/dev/null || echo 0; fi
}

stop_kubelet() {
  stop_process kubelet kubelet
  wait_ports_free 30 "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT" "$(readonly_port)"
}

start_kubelet() {
  pid_alive kubelet kubelet && return 0
  # A kubelet stopped a moment ago may still hold its ports.
  wait_ports_free 30 "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT" "$(readonly_port)"
  write_kubelet_config
  local args=(--config="$STATE/kubelet.yaml" --root-dir="$STATE/kubelet" --cert-dir="$STATE/kubelet/pki"
    --hostname-override="$NODE_NAME" --v=2)
  [ "$MODE" = kubelet ] || args+=(--kubeconfig="$PKI/kubelet.kubeconfig")
  [ "$MODE" = cluster ] && args+=(--node-ip="$NODE_IP")
  spawn kubelet "$BIN/kubelet" "${args[@]}"
  local i
  for ((i = 0; i < 120; i++)); do
    curl -sf --max-time 2 "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz" >/dev/null && return 0
    alive_or_fail kubelet kubelet
    sleep 0.5
  done
  fail "the kubelet is not healthy after 60 s, see $LOGS/kubelet.log"
}

# The three static pods of the tests, one per QoS class, each with a
# container "work" that holds memory and burns a little CPU.
STATIC_PODS="guaranteed burstable besteffort"

static_pods() {
  local q resources args
  mkdir -p "$STATE/pods"
  for q in $STATIC_PODS; do
    case $q in
      guaranteed) resources='{requests: {cpu: 100m, memory: 48Mi}, limits: {cpu: 100m, memory: 48Mi}}' args='-alloc-mb=16 -busy=30ms' ;;
      burstable) resources='{requests: {cpu: 50m, memory: 32Mi}, limits: {cpu: 200m, memory: 64Mi}}' args='-alloc-mb=16 -busy=30ms' ;;
      besteffort) resources='{}' args='-alloc-mb=8 -busy=10ms' ;;
    esac
    cat >"$STATE/pods/$q.yaml" <<EOC
apiVersion: v1
kind: Pod
metadata:
  name: $q
  namespace: default
  labels: {app.kubernetes.io/name: nodeagent-harness, qos: $q}
spec:
  hostNetwork: true
  containers:
  - name: work
    image: $PAUSE_IMAGE
    imagePullPolicy: Never
    command: [/pause, ${args// /, }]
    resources: $resources
EOC
    # Copy only a changed manifest: the kubelet restarts a pod whose file
    # is touched.
    cmp -s "$STATE/pods/$q.yaml" "$STATE/manifests/$q.yaml" || cp "$STATE/pods/$q.yaml" "$STATE/manifests/$q.yaml"
  done
  local names=""
  for q in $STATIC_PODS; do names+="${names:+,}$q-$NODE_NAME"; done
  "$BIN/clustertool" wait-pods -kubelet "https://127.0.0.1:$KUBELET_PORT" -ca "$PKI/ca.crt" \
    -cert "$PKI/client.crt" -key "$PKI/client.key" -namespace default -names "$names" -timeout 3m ||
    fail "the static pods are not running, see $LOGS/kubelet.log"
}

stop_pods_and_containerd() {
  if pid_alive containerd containerd; then
    local id
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1; done
    sleep 1
    for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$id" >/dev/null 2>&1; done
  fi
  stop_process containerd containerd
  # Shims outlive containerd; ours name our socket.
  local p cmd
  for p in /proc/[0-9]*; do
    { cmd=$(tr '\0' ' ' <"$p/cmdline"); } 2>/dev/null || continue
    case $cmd in *containerd-shim*" -address $CONTAINERD_SOCK "*) kill -KILL "${p#/proc/}" 2>/dev/null && say "killed shim ${p#/proc/}" ;; esac
  done
}

# remove_pod_cgroups: the kubelet's kubepods trees (cgroupfs driver) in
# every hierarchy, deepest first; rmdir removes only empty groups.
remove_pod_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [ -d "$h" ] || continue
    find "$h" -depth -type d -exec rmdir {} + 2>/dev/null
    [ -d "$h" ] && say "warning: $h is still there (processes left in it)"
  done
  return 0
}
