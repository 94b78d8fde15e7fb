# Builds, once per version, of every binary the harness runs, into
# $CLUSTER_CACHE/bin. Go's own module and build caches are used, so a second
# harness (another checkout) shares the downloads.

# ensure_packages: the Debian packages of APT_PACKAGES, installed when
# missing (root), or the exact command to run.
ensure_packages() {
  local missing=() p
  for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || [ "${CLUSTER_NO_APT:-0}" = 1 ]; then
    fail "missing Debian packages; run: apt-get install -y --no-install-recommends ${missing[*]}"
  fi
  say "installing ${missing[*]} from apt"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >>"$CLUSTER_CACHE/apt.log" 2>&1 || fail "apt-get install ${missing[*]} failed, see $CLUSTER_CACHE/apt.log"
  command -v go >/dev/null || fail "go is not on PATH"
}

# gobuild DIR ARGS...: go build in DIR at low priority, output appended to
# the build log.
gobuild() {
  local dir=$1
  shift
  (cd "$dir" && GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0 nice -n 10 go build -trimpath -buildvcs=false "$@") >>"$CLUSTER_CACHE/build.log" 2>&1
}

# stamped NAME VERSION: $BIN/NAME exists and was built at VERSION.
stamped() { [ -x "$BIN/$1" ] && [ "$(cat "$BIN/$1.version" 2>/dev/null)" = "$2" ]; }

# timed NAME VERSION CMD...: run a build step, record how long it took in
# $CLUSTER_CACHE/build-times (the README quotes these) and stamp it.
timed() {
  local name=$1 version=$2 t0=$SECONDS
  shift 2
  say "building $name $version (log: $CLUSTER_CACHE/build.log)"
  "$@" || fail "building $name failed; the end of $CLUSTER_CACHE/build.log says why"
  echo "$version" >"$BIN/$name.version"
  printf '%s %s %ss %s\n' "$name" "$version" $((SECONDS - t0)) "$(date -u +%FT%TZ)" >>"$CLUSTER_CACHE/build-times"
  say "built $name in $((SECONDS - t0))s"
}

# scratch_module DIR ROOT@VERSION [SIBLING...]: a throw-away main module in
# DIR that requires ROOT and pins each SIBLING module to VERSION. Modules
# that develop several modules in one repository (kubernetes' staging tree,
# etcd, the Prometheus Operator) point at the siblings with replace
# directives to relative paths, which `go install mod@version` refuses;
# replacing them by their published releases is the same code.
# PACKAGES (the main packages to build) go in a tools file so that `go mod
# tidy` keeps what they import.
scratch_module() {
  local dir=$1 root=${2%@*} version=${2#*@} siblings=$3 packages=$4 m p
  [ -s "$dir/go.sum" ] && [ "$(cat "$dir/.pinned" 2>/dev/null)" = "$2" ] && return 0
  rm -rf "$dir" && mkdir -p "$dir"
  {
    printf 'module scratch\n\ngo 1.26.0\n\nrequire %s %s\n' "$root" "$version"
    for m in $siblings; do printf 'replace %s => %s %s\n' "${m%@*}" "${m%@*}" "${m#*@}"; done
  } >"$dir/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for p in $packages; do printf '\t_ "%s"\n' "$p"; done
    printf ')\n'
  } >"$dir/tools.go"
  say "resolving the modules of $2 (the first time downloads several hundred)"
  (cd "$dir" && GOFLAGS=-mod=mod GOWORK=off nice -n 10 go mod tidy) >>"$CLUSTER_CACHE/build.log" 2>&1 ||
    fail "go mod tidy for $2 failed, see $CLUSTER_CACHE/build.log"
  echo "$2" >"$dir/.pinned"
}

# k8s_staging: the staging modules of k8s.io/kubernetes at K8S_VERSION, as
# MODULE@v0.MINOR.PATCH words for scratch_module.
k8s_staging() {
  local gomod
  gomod=$(cd "$SRC" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  [ -s "$gomod" ] || fail "cannot download k8s.io/kubernetes@v$K8S_VERSION"
  # Lines like "	k8s.io/api => ./staging/src/k8s.io/api"; the sample-* modules
  # are examples nobody imports.
  awk -v v="v0.${K8S_VERSION#*.}" '$2 == "=>" && $3 ~ /^\.\/staging\// && $1 !~ /\/sample-/ { print $1 "@" v }' "$gomod"
}

K8S_COMPONENTS="kubelet kube-apiserver kube-controller-manager kube-scheduler"

build_kubernetes() {
  local c missing=() dir=$SRC/kubernetes pkgs=""
  for c in $K8S_COMPONENTS; do stamped "$c" "$K8S_VERSION" || missing+=("$c"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  for c in $K8S_COMPONENTS; do pkgs+=" k8s.io/kubernetes/cmd/$c"; done
  scratch_module "$dir" "k8s.io/kubernetes@v$K8S_VERSION" "$(k8s_staging)" "$pkgs"
  # The version the binaries report (kubelet_node_name, /version, the
  # Node's kubeletVersion) is set the way the release build sets it.
  local v=k8s.io/component-base/version minor=${K8S_VERSION#*.}
  local ld="-s -w -X $v.gitVersion=v$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=${minor%%.*} -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z"
  # One at a time, so that build-times tells what each costs (the later
  # ones reuse the packages the first compiled).
  for c in "${missing[@]}"; do
    timed "$c" "$K8S_VERSION" gobuild "$dir" -ldflags "$ld" -o "$BIN/$c" "k8s.io/kubernetes/cmd/$c"
  done
}

build_etcd() {
  stamped etcd "$ETCD_VERSION" && return 0
  local m siblings=""
  for m in api/v3 client/pkg/v3 client/v3 pkg/v3; do siblings+=" go.etcd.io/etcd/$m@v$ETCD_VERSION"; done
  scratch_module "$SRC/etcd" "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" "$siblings" go.etcd.io/etcd/server/v3
  timed etcd "$ETCD_VERSION" gobuild "$SRC/etcd" -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3
}

# The e2e tools: kube-state-metrics, Prometheus and promtool, the
# Prometheus Operator.
build_ksm() {
  stamped kube-state-metrics "$KSM_VERSION" && return 0
  scratch_module "$SRC/kube-state-metrics" "k8s.io/kube-state-metrics/v2@v$KSM_VERSION" "" k8s.io/kube-state-metrics/v2
  local v=github.com/prometheus/common/version
  timed kube-state-metrics "$KSM_VERSION" gobuild "$SRC/kube-state-metrics" \
    -ldflags "-s -w -X $v.Version=v$KSM_VERSION" -o "$BIN/kube-state-metrics" k8s.io/kube-state-metrics/v2
}

build_prometheus() {
  stamped prometheus "$PROMETHEUS_VERSION" && stamped promtool "$PROMETHEUS_VERSION" && return 0
  local p=github.com/prometheus/prometheus/cmd
  scratch_module "$SRC/prometheus" "github.com/prometheus/prometheus@v$PROMETHEUS_VERSION" "" "$p/prometheus $p/promtool"
  local v=github.com/prometheus/common/version
  local ld="-s -w -X $v.Version=$PROMETHEUS_VERSION -X $v.Branch=module -X $v.Revision=v$PROMETHEUS_VERSION"
  stamped prometheus "$PROMETHEUS_VERSION" ||
    timed prometheus "$PROMETHEUS_VERSION" gobuild "$SRC/prometheus" -ldflags "$ld" -o "$BIN/prometheus" "$p/prometheus"
  stamped promtool "$PROMETHEUS_VERSION" ||
    timed promtool "$PROMETHEUS_VERSION" gobuild "$SRC/prometheus" -ldflags "$ld" -o "$BIN/promtool" "$p/promtool"
}

build_operator() {
  stamped prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" && return 0
  local r=github.com/prometheus-operator/prometheus-operator v=v$PROMETHEUS_OPERATOR_VERSION
  scratch_module "$SRC/prometheus-operator" "$r@$v" "$r/pkg/apis/monitoring@$v $r/pkg/client@$v" "$r/cmd/operator"
  local pv=github.com/prometheus/common/version
  timed prometheus-operator "$PROMETHEUS_OPERATOR_VERSION" gobuild "$SRC/prometheus-operator" \
    -ldflags "-s -w -X $pv.Version=$PROMETHEUS_OPERATOR_VERSION" -o "$BIN/prometheus-operator" "$r/cmd/operator"
}

# operator_crds: the directory of the Prometheus Operator's CRD manifests in
# the module cache (they ship in the module, not in the binary).
operator_crds() {
  local dir
  dir=$(cd "$SRC/prometheus-operator" && GOFLAGS=-mod=mod go list -m -f '{{.Dir}}' "github.com/prometheus-operator/prometheus-operator")
  echo "$dir/example/prometheus-operator-crd"
}

# build_tools: the harness's own Go programs from this checkout (the pod
# program and the helper that makes images, certificates' users and
# tokens); go build's cache makes a rebuild with no change quick.
build_tools() {
  local repo=$HARNESS/../..
  (cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$BIN/podprogram" ./test/cluster/podprogram &&
    go build -o "$BIN/clustertool" ./test/cluster/clustertool) || fail "building the harness's programs failed"
}

build_core() {
  mkdir -p "$BIN" "$SRC"
  ensure_packages
  build_locked kubernetes build_kubernetes
  build_locked etcd build_etcd
  build_tools
}

build_e2e() {
  mkdir -p "$BIN" "$SRC"
  build_locked kube-state-metrics build_ksm
  build_locked prometheus build_prometheus
  build_locked prometheus-operator build_operator
}
