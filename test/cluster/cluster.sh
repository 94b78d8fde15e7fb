#!/usr/bin/env bash
# The nodeagent test cluster on 127.0.0.1: a real kubelet with containerd,
# optionally with a control plane. See README.md beside this file.
#
#   cluster.sh up [kubelet|apiserver|cluster]   start (idempotent; no mode: the running one, else apiserver)
#   cluster.sh down [--purge]                   stop; --purge also drops the state
#   cluster.sh status                           what runs, and in which mode
#   cluster.sh running                          exit status 0 when up in any mode
#   cluster.sh build                            build what up needs (no start)
#   cluster.sh build-e2e                        build kube-state-metrics, Prometheus, promtool, the operator
#   cluster.sh stop-kubelet                     stop the kubelet alone (pods keep running)
#   cluster.sh start-kubelet [--read-only-port N]  start it again; N (0: off) is kept for later starts
#   cluster.sh import IMAGE.tar                 import an image tarball into containerd
#   cluster.sh ns CMD...                        run CMD in the harness's mount namespace
set -euo pipefail

HARNESS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
for f in config common build pki namespace components; do
  # shellcheck source=/dev/null
  . "$HARNESS/lib/$f.sh"
done

MODES="kubelet apiserver cluster"

# The processes of each mode, in start order: NAME and the program's comm.
processes() {
  case $1 in
    kubelet) echo "ns:sleep containerd:containerd kubelet:kubelet" ;;
    apiserver) echo "ns:sleep etcd:etcd apiserver:kube-apiserver containerd:containerd kubelet:kubelet" ;;
    cluster) echo "ns:sleep etcd:etcd apiserver:kube-apiserver controller-manager:kube-controller scheduler:kube-scheduler containerd:containerd kubelet:kubelet" ;;
  esac
}

current_mode() { cat "$RUN/mode" 2>/dev/null || true; }

# running_as MODE: every process of MODE is alive.
running_as() {
  local p
  [ "$(current_mode)" = "$1" ] || return 1
  for p in $(processes "$1"); do pid_alive "${p%%:*}" "${p#*:}" || return 1; done
}

# foreign_kubelet: a kubelet this harness did not start. Two kubelets with
# the cgroupfs driver share /sys/fs/cgroup/*/kubepods and remove each
# other's pods as orphans, so the harness will not start beside one.
foreign_kubelet() {
  local ours="" p
  [ -s "$RUN/kubelet.pid" ] && ours=$(<"$RUN/kubelet.pid")
  for p in $(pgrep -x kubelet); do [ "$p" = "$ours" ] || { echo "$p"; return 0; }; done
  return 1
}

cmd_up() {
  # No mode: the one running, else apiserver.
  MODE=${1:-}
  if [ -z "$MODE" ]; then
    MODE=$(current_mode)
    running_as "${MODE:-none}" || MODE=apiserver
  fi
  case " $MODES " in *" $MODE "*) ;; *) fail "unknown mode $MODE (one of: $MODES)" ;; esac
  need_root
  local t0=$SECONDS other
  build_core
  make_pki
  mkdir -p "$RUN" "$LOGS" "$STATE" "$TOKENS"
  if running_as "$MODE"; then
    say "already up in $MODE mode"
    [ "$MODE" = kubelet ] || bootstrap # fresh tokens
  else
    if [ -n "$(current_mode)" ] || compgen -G "$RUN/*.pid" >/dev/null; then
      say "restarting in $MODE mode (was: $(current_mode))"
      stop_all
    fi
    if other=$(foreign_kubelet); then fail "another kubelet runs here (pid $other); stop it first"; fi
    start_namespace
    if [ "$MODE" != kubelet ]; then
      start_etcd
      start_apiserver
      bootstrap
    fi
    if [ "$MODE" = cluster ]; then
      start_controller_manager
      start_scheduler
      wait_control_plane
      start_pod_network
    fi
    start_containerd
    date +%s >"$RUN/kubelet.started"
    start_kubelet
    echo "$MODE" >"$RUN/mode"
  fi
  static_pods
  if [ "$MODE" = cluster ]; then
    "$BIN/clustertool" wait-node -kubeconfig "$PKI/admin.kubeconfig" -node "$NODE_NAME" -timeout 3m \
      -since "$(cat "$RUN/kubelet.started" 2>/dev/null || echo 0)" ||
      fail "the node is not Ready, see $LOGS/kubelet.log"
  fi
  write_env
  say "up in $MODE mode after $((SECONDS - t0))s; env file $ENV_FILE, logs $LOGS"
  summary
}

# write_env: the file the tests read (NODEAGENT_INTEGRATION, NODEAGENT_E2E)
# and a shell can source.
write_env() {
  {
    echo "# written by test/cluster/cluster.sh up $MODE"
    echo "export CLUSTER_MODE=$MODE"
    echo "export CLUSTER_DIR=$CLUSTER_DIR"
    echo "export CLUSTER_NS_PID=$(ns_pid)"
    echo "export KUBELET_URL=https://127.0.0.1:$KUBELET_PORT"
    echo "export KUBELET_HEALTHZ_URL=http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz"
    echo "export KUBELET_CA=$PKI/ca.crt"
    echo "export KUBELET_CLIENT_CERT=$PKI/client.crt"
    echo "export KUBELET_CLIENT_KEY=$PKI/client.key"
    echo "export KUBELET_NODE_NAME=$NODE_NAME"
    echo "export KUBELET_STATIC_PODS=\"$STATIC_PODS\""
    echo "export CONTAINERD_ADDRESS=$CONTAINERD_SOCK"
    echo "export CONTAINERD_NAMESPACE=k8s.io"
    echo "export POD_IMAGE=$PAUSE_IMAGE"
    echo "export CONTAINERD_METRICS_URL=http://127.0.0.1:$CONTAINERD_METRICS_PORT/v1/metrics"
    if [ "$MODE" != kubelet ]; then
      echo "export KUBE_APISERVER_URL=https://127.0.0.1:$APISERVER_PORT"
      echo "export KUBECONFIG=$PKI/admin.kubeconfig"
      echo "export KUBELET_TOKEN_FILE=$TOKENS/node-agent.token"
      echo "export KUBELET_FORBIDDEN_TOKEN_FILE=$TOKENS/nobody.token"
    fi
    if [ "$MODE" = cluster ]; then
      echo "export NODE_IP=$NODE_IP"
      echo "export POD_SUBNET=$POD_SUBNET"
      echo "export SERVICE_SUBNET=$SERVICE_SUBNET"
    fi
    local b
    for b in kube-state-metrics:KUBE_STATE_METRICS prometheus:PROMETHEUS promtool:PROMTOOL prometheus-operator:PROMETHEUS_OPERATOR; do
      [ -x "$BIN/${b%%:*}" ] && echo "export ${b#*:}_BIN=$BIN/${b%%:*}"
    done
    [ -d "$SRC/prometheus-operator" ] && [ -x "$BIN/prometheus-operator" ] && echo "export PROMETHEUS_OPERATOR_CRDS=$(operator_crds)"
    echo "export KUBE_STATE_METRICS_PORT=$KSM_PORT"
    echo "export PROMETHEUS_PORT=$PROMETHEUS_PORT"
    echo "export PROMETHEUS_OPERATOR_PORT=$PROMETHEUS_OPERATOR_PORT"
    echo "export NODEAGENT_PROMETHEUS_PORT=$NODEAGENT_PROMETHEUS_PORT"
  } >"$ENV_FILE.new"
  mv "$ENV_FILE.new" "$ENV_FILE"
}

summary() {
  cat >&2 <<EOS
  kubelet      https://127.0.0.1:$KUBELET_PORT  ($("$BIN/kubelet" --version 2>/dev/null), containerd $(containerd --version | awk '{print $3}'))
  client cert  $PKI/client.crt (key client.key, CA ca.crt)
EOS
  [ "$MODE" = kubelet ] && return 0
  cat >&2 <<EOS
  apiserver    https://127.0.0.1:$APISERVER_PORT  (KUBECONFIG=$PKI/admin.kubeconfig)
  tokens       $TOKENS/node-agent.token (nodes/metrics, nodes/pods), $TOKENS/nobody.token (no rights)
EOS
}

stop_all() {
  stop_process kubelet kubelet
  stop_pods_and_containerd
  stop_process scheduler kube-scheduler
  stop_process controller-manager kube-controller
  stop_process apiserver kube-apiserver
  stop_process etcd etcd
  stop_namespace
  stop_pod_network
  remove_pod_cgroups
  rm -f "$RUN/mode" "$RUN/readonly-port" # a new start has the read-only port closed
}

cmd_down() {
  need_root
  stop_all
  if [ "${1:-}" = --purge ]; then
    rm -rf "$STATE" "$LOGS" "$RUN" "$TOKENS" "$PKI" "$ENV_FILE"
    say "removed the state under $CLUSTER_DIR (the build cache $CLUSTER_CACHE stays)"
  else
    rm -f "$ENV_FILE"
  fi
  say down
}

# cmd_stop_kubelet: the kubelet alone, for the tests of what a scraper sees
# while it is down; containerd and the pods keep running, as on a node
# whose kubelet crashed.
cmd_stop_kubelet() {
  need_root
  MODE=$(current_mode)
  [ -n "$MODE" ] || fail "the cluster is not up"
  stop_kubelet
  say "kubelet stopped (containerd and the pods run on)"
}

# cmd_start_kubelet [--read-only-port N]: start the kubelet of the running
# mode again, with its configuration rewritten (N is remembered in
# RUN/readonly-port); in cluster mode, wait until the Node is Ready with a
# heartbeat of this kubelet.
cmd_start_kubelet() {
  need_root
  MODE=$(current_mode)
  [ -n "$MODE" ] || fail "the cluster is not up"
  while [ $# -gt 0 ]; do
    case $1 in
      --read-only-port) [ -n "${2:-}" ] || fail "--read-only-port needs a port (0: off)"; echo "$2" >"$RUN/readonly-port"; shift 2 ;;
      *) fail "start-kubelet: unknown argument $1" ;;
    esac
  done
  if pid_alive kubelet kubelet; then
    # A changed configuration needs a new process.
    stop_kubelet
  fi
  date +%s >"$RUN/kubelet.started"
  start_kubelet
  if [ "$MODE" = cluster ]; then
    "$BIN/clustertool" wait-node -kubeconfig "$PKI/admin.kubeconfig" -node "$NODE_NAME" -timeout 3m \
      -since "$(cat "$RUN/kubelet.started")" || fail "the node is not Ready, see $LOGS/kubelet.log"
  fi
  say "kubelet started (read-only port $(readonly_port))"
}

cmd_status() {
  local mode p
  mode=$(current_mode)
  echo "mode: ${mode:-down}  (CLUSTER_DIR=$CLUSTER_DIR)"
  for p in $(processes cluster); do
    if pid_alive "${p%%:*}" "${p#*:}"; then echo "  ${p%%:*}: running, pid $(<"$RUN/${p%%:*}.pid")"; else echo "  ${p%%:*}: -"; fi
  done
  [ -n "$mode" ] && running_as "$mode"
}

case ${1:-} in
  up) shift; with_lock cmd_up "$@" ;;
  down) shift; with_lock cmd_down "$@" ;;
  status) cmd_status ;;
  running) m=$(current_mode) && [ -n "$m" ] && running_as "$m" ;;
  build) need_root; build_core ;;
  build-e2e) build_e2e ;;
  stop-kubelet) with_lock cmd_stop_kubelet ;;
  start-kubelet) shift; with_lock cmd_start_kubelet "$@" ;;
  import) [ -n "${2:-}" ] || fail "usage: cluster.sh import IMAGE.tar"; ctr_ images import "$2" ;;
  ns) shift; in_ns "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
