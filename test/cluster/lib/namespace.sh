# The private mount namespace every process of the harness runs in. A
# holder process (sleep) keeps it alive between commands; the harness
# enters it with nsenter. Inside it, and only there:
#   /run                 a fresh tmpfs: containerd's shim sockets, the
#                        netns mounts and anything else programs put under
#                        /run stay private; /run/containerd/containerd.sock
#                        points at the harness's socket, because the
#                        kubelet's cAdvisor dials that fixed path for
#                        container labels
#   /var/lib/cni         the CNI result cache (containerd 1.6 cannot move it)
#   /var/log/containers  the kubelet's log symlinks (a fixed path)
#   /etc/hosts           the host's, plus NODE_NAME -> 127.0.0.1, so the API
#                        server reaches the kubelet by the node's name
#   shared propagation   every mount of the namespace is shared within it
#                        (never with the host), as on a systemd host, for
#                        mountPropagation: HostToContainer volumes
#   /proc/sys/...        stand-in files for the kernel settings the kubelet
#                        wants (protectKernelDefaults: it checks, never
#                        writes) and for ip_forward, which the CNI bridge
#                        plugin turns on: the host's values never change
# The two mount points under /var are made on the host when missing (empty
# directories, removed again by down).

ns_pid() { cat "$RUN/ns.pid"; }

# ns_entered: the holder has left the host's mount namespace.
ns_entered() { [ "$(readlink "/proc/$(ns_pid)/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ]; }

# in_ns CMD...: run CMD in the namespace.
in_ns() { nsenter -t "$(ns_pid)" -m -- "$@"; }

# host_mountpoint DIR: make DIR on the host if missing, and remember it.
host_mountpoint() {
  [ -d "$1" ] && return 0
  mkdir -p "$1"
  echo "$1" >>"$RUN/created-dirs"
}

# The settings the kubelet checks with protectKernelDefaults, and the one
# the bridge plugin writes.
KERNEL_SETTINGS="vm/overcommit_memory=1 vm/panic_on_oom=0 kernel/panic=10 kernel/panic_on_oops=1
  kernel/keys/root_maxkeys=1000000 kernel/keys/root_maxbytes=25000000 net/ipv4/ip_forward=1"

start_namespace() {
  pid_alive ns sleep && return 0
  case $CLUSTER_DIR in /run/* | /var/run/*) fail "CLUSTER_DIR may not be under /run: the namespace hides it" ;; esac
  mkdir -p "$RUN" "$STATE/cni-cache" "$STATE/container-logs" "$RUN/kernel"
  setsid unshare --mount --propagation private sleep infinity </dev/null >/dev/null 2>&1 8>&- 9>&- &
  echo $! >"$RUN/ns.pid"
  wait_for 5 namespace ns_entered || fail "could not make the mount namespace"
  # Shared propagation inside the namespace. unshare made every mount
  # private, which cuts them from the host's peer groups (nothing mounted
  # here reaches the host); making them shared again creates peer groups of
  # the namespace's own. containerd refuses a hostPath volume mounted with
  # mountPropagation: HostToContainer (nodeagent's DaemonSet mounts / so)
  # unless its source is a shared or slave mount: "path / is mounted on /
  # but it is not a shared or slave mount".
  in_ns mount --make-rshared / || fail "could not make the namespace's mounts shared"
  host_mountpoint /var/lib/cni
  host_mountpoint /var/log/containers
  { cat /etc/hosts; printf '127.0.0.1\t%s\n' "$NODE_NAME"; } >"$RUN/hosts"
  in_ns sh -euc '
    mount -t tmpfs -o mode=755,size=64m nodeagent-harness /run
    mkdir -p /run/containerd
    ln -s "$1" /run/containerd/containerd.sock
    mount --bind "$2/cni-cache" /var/lib/cni
    mount --bind "$2/container-logs" /var/log/containers
    mount --bind "$3" /etc/hosts
  ' sh "$CONTAINERD_SOCK" "$STATE" "$RUN/hosts" || fail "could not set up the mount namespace"
  local kv key want file
  for kv in $KERNEL_SETTINGS; do
    key=${kv%=*} want=${kv#*=}
    [ "$(cat "/proc/sys/$key")" = "$want" ] && continue
    file=$RUN/kernel/${key//\//.}
    echo "$want" >"$file"
    in_ns mount --bind "$file" "/proc/sys/$key" || fail "could not cover /proc/sys/$key"
  done
}

stop_namespace() {
  stop_process ns sleep
  local d
  if [ -s "$RUN/created-dirs" ]; then
    while read -r d; do rmdir "$d" 2>/dev/null || say "left $d (not empty)"; done <"$RUN/created-dirs"
    rm -f "$RUN/created-dirs"
  fi
}
