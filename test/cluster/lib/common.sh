# Small helpers every part of the harness uses.

say() { printf 'cluster: %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }

# pid_alive NAME COMM: the pid recorded for NAME runs and is still the
# program we started (a recycled pid is not ours).
pid_alive() {
  local f=$RUN/$1.pid pid
  [ -s "$f" ] || return 1
  pid=$(<"$f")
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ]
}

# wait_for SECONDS WHAT CMD...: retry CMD twice a second until it succeeds.
wait_for() {
  local secs=$1 what=$2 i
  shift 2
  for ((i = 0; i < secs * 2; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  return 1
}

# with_lock CMD...: one up or down at a time per CLUSTER_DIR (make
# integration and a hand-run up must not race).
with_lock() {
  mkdir -p "$CLUSTER_DIR"
  exec 9>"$CLUSTER_DIR/.lock"
  flock -w 600 9 || fail "another harness command holds $CLUSTER_DIR/.lock"
  "$@"
}

# build_locked NAME CMD...: one build of NAME at a time per cache (two
# checkouts may share it); builds of different things run side by side.
build_locked() {
  local name=$1
  shift
  mkdir -p "$SRC"
  (
    exec 8>"$SRC/.$name.lock"
    flock 8
    "$@"
  ) || exit 1
}

need_root() {
  [ "$(id -u)" = 0 ] || fail "the harness needs root (mount namespace, cgroups, bridge)"
}
