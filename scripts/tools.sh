#!/usr/bin/env bash
# Build the pinned Go tools into .tools/bin (git-ignored).
#
#   scripts/tools.sh                    build every tool that is missing or stale
#   scripts/tools.sh nats-server nats   build only these
#   scripts/tools.sh --check [tools]    exit 1 (building nothing) if any is missing or stale
#   scripts/tools.sh --list             print tools, pinned versions and status
#   scripts/tools.sh --update [tools]   regenerate tools/<module>/go.mod+go.sum from
#                                       tools/versions.env (needs the Go module proxy)
#   scripts/tools.sh metrics-server kube-state-metrics
#   scripts/tools.sh coredns local-path-provisioner crictl
#                                       the offline cluster's add-ons: built only when named
#
# Versions come only from tools/versions.env. Each tool is its own Go module under
# tools/<module>/ (their dependency pins clash). A stamp .tools/bin/.<tool>.version holds
# the pinned version and a hash of the module files and build flags; a tool is rebuilt
# when the stamp differs or the binary is gone. Env: TOOLS_BIN (output dir),
# TOOLS_NO_REUSE=1 (never symlink a matching binary found on PATH).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=$ROOT/tools
BIN=${TOOLS_BIN:-$ROOT/.tools/bin}
LOG_DIR=$(dirname "$BIN")/logs

# Build order: the ones other work needs soonest first.
ALL_TOOLS=(nats-server nats etcd kube-apiserver kubectl prometheus promtool helm kind)
# Only the offline cluster needs these (scripts/cluster/addon-images.sh names them); not in the default set.
ADDON_TOOLS=(metrics-server kube-state-metrics)
# Only the offline kind node image needs these (scripts/cluster/offline-images.sh names them).
NODE_IMAGE_TOOLS=(coredns local-path-provisioner crictl)

say() { printf '[tools] %s\n' "$*" >&2; }
die() { printf '[tools] ERROR: %s\n' "$*" >&2; exit 1; }

[[ -f $TOOLS_DIR/versions.env ]] || die "missing $TOOLS_DIR/versions.env"
# shellcheck source=/dev/null
source "$TOOLS_DIR/versions.env"

# ---------------------------------------------------------------------------------------
# Per-tool facts. tool_info NAME sets: MOD (dir under tools/), PKG (what to go build),
# VERSION, TAGS, LDFLAGS (static part), VERSION_CMD (how to ask the binary), EXPECT (a
# string its output must contain).
tool_info() {
  TAGS="" LDFLAGS=""
  local kmaj kmin
  case $1 in
    nats-server)
      MOD=nats-server PKG=github.com/nats-io/nats-server/v2 VERSION=$NATS_SERVER_VERSION
      VERSION_CMD="--version" EXPECT="nats-server: $NATS_SERVER_VERSION" ;;
    nats)
      MOD=natscli PKG=github.com/nats-io/natscli/nats VERSION=$NATSCLI_VERSION
      LDFLAGS="-X main.version=${NATSCLI_VERSION#v}"
      VERSION_CMD="--version" EXPECT="${NATSCLI_VERSION#v}" ;;
    etcd)
      MOD=etcd PKG=. VERSION=$ETCD_VERSION
      VERSION_CMD="--version" EXPECT="etcd Version: ${ETCD_VERSION#v}" ;;
    kube-apiserver|kubectl)
      MOD=kubernetes PKG=k8s.io/kubernetes/cmd/$1 VERSION=$KUBERNETES_VERSION
      kmaj=${KUBERNETES_VERSION#v}; kmaj=${kmaj%%.*}
      kmin=${KUBERNETES_VERSION#v*.}; kmin=${kmin%%.*}
      local p
      for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        LDFLAGS+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=$kmaj -X $p.gitMinor=$kmin"
      done
      LDFLAGS=${LDFLAGS# }
      if [[ $1 == kubectl ]]; then VERSION_CMD="version --client"; EXPECT="Client Version: $KUBERNETES_VERSION"
      else VERSION_CMD="--version"; EXPECT="Kubernetes $KUBERNETES_VERSION"; fi ;;
    prometheus|promtool)
      MOD=prometheus PKG=github.com/prometheus/prometheus/cmd/$1 VERSION=$PROMETHEUS_VERSION
      # No web UI assets (builtinassets would need the generated, un-shipped asset bundle);
      # keep only the kubernetes service discovery (+ the always-on static/file/http):
      # upstream's documented remove_all_sd tag cuts the cloud SDKs out of the build.
      TAGS="netgo,remove_all_sd,enable_kubernetes_sd"
      LDFLAGS="-X github.com/prometheus/common/version.Version=$PROMETHEUS_APP_VERSION"
      LDFLAGS+=" -X github.com/prometheus/common/version.Revision=$PROMETHEUS_VERSION"
      LDFLAGS+=" -X github.com/prometheus/common/version.Branch=HEAD"
      LDFLAGS+=" -X github.com/prometheus/common/version.BuildUser=sagamesh-tools"
      VERSION_CMD="--version" EXPECT="$1, version $PROMETHEUS_APP_VERSION" ;;
    helm)
      MOD=helm PKG=helm.sh/helm/v3/cmd/helm VERSION=$HELM_VERSION
      LDFLAGS="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
      LDFLAGS+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
      VERSION_CMD="version --short" EXPECT="$HELM_VERSION" ;;
    kind)
      MOD=kind PKG=sigs.k8s.io/kind VERSION=$KIND_VERSION
      VERSION_CMD="version" EXPECT="kind $KIND_VERSION " ;;
    metrics-server)
      MOD=metrics-server PKG=sigs.k8s.io/metrics-server/cmd/metrics-server VERSION=$METRICS_SERVER_VERSION
      # as metrics-server's Makefile: its --version prints client-go's gitVersion
      LDFLAGS="-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
      VERSION_CMD="--version" EXPECT="$METRICS_SERVER_VERSION" ;;
    kube-state-metrics)
      MOD=kube-state-metrics PKG=k8s.io/kube-state-metrics/v2 VERSION=$KUBE_STATE_METRICS_VERSION
      LDFLAGS="-X github.com/prometheus/common/version.Version=$KUBE_STATE_METRICS_VERSION"
      LDFLAGS+=" -X github.com/prometheus/common/version.Branch=HEAD"
      LDFLAGS+=" -X github.com/prometheus/common/version.BuildUser=sagamesh-tools"
      VERSION_CMD="version" EXPECT="kube-state-metrics, version $KUBE_STATE_METRICS_VERSION" ;;
    coredns)
      MOD=coredns PKG=github.com/coredns/coredns VERSION=$COREDNS_VERSION
      VERSION_CMD="-version" EXPECT="CoreDNS-${COREDNS_VERSION#v}" ;;
    local-path-provisioner)
      MOD=local-path-provisioner PKG=github.com/rancher/local-path-provisioner VERSION=$LOCAL_PATH_PROVISIONER_VERSION
      LDFLAGS="-X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION"
      VERSION_CMD="--version" EXPECT="version $LOCAL_PATH_PROVISIONER_VERSION" ;;
    crictl)
      MOD=crictl PKG=sigs.k8s.io/cri-tools/cmd/crictl VERSION=$CRICTL_VERSION
      LDFLAGS="-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
      VERSION_CMD="--version" EXPECT="crictl version $CRICTL_VERSION" ;;
    *) die "unknown tool '$1' (known: ${ALL_TOOLS[*]} ${ADDON_TOOLS[*]} ${NODE_IMAGE_TOOLS[*]})" ;;
  esac
}

# Extra ldflags only computable with the module graph loaded (not part of the stamp: the
# go.mod/go.sum hash already covers them).
dynamic_ldflags() {
  case $1 in
    helm)
      # helm's Makefile stamps the Kubernetes version of its client-go into lint/chartutil.
      local v maj min
      v=$(cd "$TOOLS_DIR/helm" && go list -m -f '{{.Version}}' k8s.io/client-go)
      v=${v#v}; maj=$(( ${v%%.*} + 1 )); min=${v#*.}; min=${min%%.*}
      printf '%s' "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$maj -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$min -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$maj -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$min" ;;
    kube-state-metrics)
      # its Makefile stamps the client-go version it logs at start-up
      printf '%s' "-X k8s.io/kube-state-metrics/v2/pkg/app.ClientGoVersion=$(cd "$TOOLS_DIR/kube-state-metrics" && go list -m -f '{{.Version}}' k8s.io/client-go)" ;;
  esac
}

sha256() { if command -v sha256sum >/dev/null; then sha256sum | cut -d' ' -f1; else shasum -a 256 | cut -d' ' -f1; fi; }

# The stamp: pinned version + hash of everything that decides the binary's content.
stamp_for() {
  tool_info "$1"
  local dir=$TOOLS_DIR/$MOD h
  h=$({ printf '%s\n' "$1" "$VERSION" "$PKG" "$TAGS" "$LDFLAGS" "cgo=0 trimpath s w"
        (cd "$dir" && shopt -s nullglob && files=(go.mod go.sum ./*.go) && cat "${files[@]}"); } | sha256)
  printf '%s %s\n' "$VERSION" "$h"
}

is_current() {  # tool -> 0 if the binary exists and its stamp matches
  local t=$1 f=$BIN/.$1.version
  [[ -x $BIN/$t && -f $f ]] || return 1
  [[ "$(head -n1 "$f")" == "$(stamp_for "$t")" ]] || return 1
  if [[ -L $BIN/$t ]]; then   # reused from PATH: make sure it is still that version
    tool_info "$t"
    # shellcheck disable=SC2086 # VERSION_CMD is words on purpose
    grep -qF -- "$EXPECT" <<<"$("$BIN/$t" $VERSION_CMD 2>&1)" || return 1
  fi
}

ver_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }

check_go() {  # module dir -> dies with advice if the go toolchain cannot build it
  command -v go >/dev/null || die "go not found on PATH. Install Go (>= the 'go' line of tools/*/go.mod, currently $(need_go)) and re-run."
  local need have tc
  need=$(sed -n 's/^go \([0-9.]*\).*/\1/p' "$1/go.mod")
  have=$(go env GOVERSION); have=${have#go}; have=${have%% *}
  tc=$(go env GOTOOLCHAIN)
  if ! ver_ge "$have" "$need"; then
    if [[ $tc == local* ]]; then
      die "$1/go.mod needs Go >= $need but 'go' is $have (GOTOOLCHAIN=$tc). Install Go >= $need, or run with GOTOOLCHAIN=go$need+auto (fetches that toolchain through the module proxy)."
    fi
    say "note: $1 needs Go >= $need, 'go' is $have: GOTOOLCHAIN=$tc will fetch a newer toolchain"
  fi
}
need_go() { sed -n 's/^go \([0-9.]*\).*/\1/p' "$TOOLS_DIR"/*/go.mod | sort -V | tail -n1; }

# If a binary with exactly the pinned version is already on PATH (outside $BIN), link it.
try_reuse() {
  local t=$1 p
  [[ ${TOOLS_NO_REUSE:-} == 1 ]] && return 1
  p=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$BIN" | paste -sd: -) command -v "$t" 2>/dev/null) || return 1
  [[ -n $p && -x $p ]] || return 1
  tool_info "$t"
  # shellcheck disable=SC2086
  grep -qF -- "$EXPECT" <<<"$("$p" $VERSION_CMD 2>&1)" || return 1
  ln -sfn "$p" "$BIN/$t"
  stamp_for "$t" > "$BIN/.$t.version"
  say "$t $VERSION: reusing $p (same version found on PATH; TOOLS_NO_REUSE=1 to build instead)"
}

build_tool() {
  local t=$1 dir start log out dyn
  tool_info "$t"
  dir=$TOOLS_DIR/$MOD
  [[ -f $dir/go.mod && -f $dir/go.sum ]] || die "$dir/go.mod or go.sum missing: run 'scripts/tools.sh --update $t'"
  check_go "$dir"
  log=$LOG_DIR/$t.log
  start=$(date +%s)
  printf '[tools] building %s %s ... ' "$t" "$VERSION" >&2
  if ! dyn=$(dynamic_ldflags "$t" 2>"$log") || ! (
      cd "$dir" &&
      go build -mod=readonly -buildvcs=false -trimpath -tags "$TAGS" \
        -ldflags "-s -w $LDFLAGS $dyn" -o "$BIN/.$t.tmp" "$PKG"
    ) >>"$log" 2>&1; then
    printf 'FAILED after %ss\n' $(( $(date +%s) - start )) >&2
    tail -n 25 "$log" | sed 's/^/    /' >&2
    local hint="See $log. Re-run 'scripts/tools.sh $t' once fixed."
    if grep -qE 'dial tcp|i/o timeout|no such host|proxyconnect|connection refused|403 Forbidden|404 Not Found|module lookup disabled|unrecognized import path|reading https?://' "$log"; then
      hint="Downloading modules failed: the Go module proxy must be reachable (GOPROXY=$(go env GOPROXY); the default https://proxy.golang.org,direct works). $hint"
    elif grep -qE 'missing go.sum entry|updates to go.mod needed' "$log"; then
      hint="tools/$MOD/go.mod/go.sum are incomplete: run 'scripts/tools.sh --update $t'. $hint"
    elif grep -qE 'no space left' "$log"; then
      hint="Out of disk space (GOCACHE=$(go env GOCACHE), GOMODCACHE=$(go env GOMODCACHE)). $hint"
    fi
    rm -f "$BIN/.$t.tmp"
    die "building $t $VERSION failed. $hint"
  fi
  # shellcheck disable=SC2086
  out=$("$BIN/.$t.tmp" $VERSION_CMD 2>&1 || true)
  if ! grep -qF -- "$EXPECT" <<<"$out"; then
    printf 'FAILED\n' >&2
    rm -f "$BIN/.$t.tmp"
    die "built $t but '$t $VERSION_CMD' does not report '$EXPECT' (got: $(head -n3 <<<"$out" | tr '\n' ' ')). Fix the ldflags in scripts/tools.sh."
  fi
  rm -f "$BIN/$t"   # may be a symlink to a reused binary: never write through it
  mv -f "$BIN/.$t.tmp" "$BIN/$t"
  stamp_for "$t" > "$BIN/.$t.version"
  printf 'done in %ss\n' $(( $(date +%s) - start )) >&2
}

# ---------------------------------------------------------------------------------------
# --update: regenerate a module's go.mod/go.sum from versions.env (run after a bump).
update_module() {
  local mod=$1 dir=$TOOLS_DIR/$1
  mkdir -p "$dir"
  say "updating tools/$mod"
  (
    cd "$dir"
    rm -f go.mod go.sum
    go mod init "sagamesh/tools/$mod" 2>/dev/null
    # Start from a low go line: `go get` raises it to what the pinned modules need, so the
    # module asks for no newer Go than necessary.
    go mod edit -go=1.24.0
    case $mod in
      nats-server) go get -tool "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION" ;;
      natscli)     go get -tool "github.com/nats-io/natscli/nats@$NATSCLI_VERSION" ;;
      etcd)        [[ -f main.go ]] || die "tools/etcd/main.go missing"
                   go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" ;;
      helm)        go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ;;
      kind)        go get -tool "sigs.k8s.io/kind@$KIND_VERSION" ;;
      coredns)     go get -tool "github.com/coredns/coredns@$COREDNS_VERSION" ;;
      local-path-provisioner) go get -tool "github.com/rancher/local-path-provisioner@$LOCAL_PATH_PROVISIONER_VERSION" ;;
      crictl)      go get -tool "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" ;;
      metrics-server)     go get -tool "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION" ;;
      kube-state-metrics) go get -tool "k8s.io/kube-state-metrics/v2@$KUBE_STATE_METRICS_VERSION" ;;
      prometheus)  go get -tool "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
                                "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" ;;
      kubernetes)
        # k8s.io/kubernetes requires its staging modules (k8s.io/api, ...) at v0.0.0 and
        # replaces them with ./staging/src/...; a consumer must replace each one with the
        # published v0.<minor>.<patch>. Generate the list from kubernetes' own go.mod.
        local kv=${KUBERNETES_VERSION#v} gomod staging m g
        staging=v0.${kv#*.}
        gomod=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
        [[ -f $gomod ]] || die "could not download k8s.io/kubernetes@$KUBERNETES_VERSION's go.mod"
        # shellcheck disable=SC2013 # one module path per line, no spaces
        for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^[:space:]]*\) => \./staging/src/.*#\1#p' "$gomod"); do
          go mod edit -replace "$m=$m@$staging"
        done
        # keep kubernetes' own runtime GODEBUG defaults (e.g. default=go1.25)
        # shellcheck disable=SC2013
        for g in $(sed -n 's/^godebug[[:space:]]\{1,\}\([^([:space:]]\{1,\}\)$/\1/p' "$gomod"); do
          go mod edit -godebug "$g"
        done
        # the node and control-plane commands are built by scripts/cluster/offline-images.sh
        local c cmds=()
        for c in kube-apiserver kubectl kubelet kubeadm kube-controller-manager kube-scheduler kube-proxy; do
          cmds+=("k8s.io/kubernetes/cmd/$c@$KUBERNETES_VERSION")
        done
        go get -tool "${cmds[@]}" ;;
      *) die "unknown module $mod" ;;
    esac
    go mod tidy
    go mod edit -toolchain=none
  )
}

# ---------------------------------------------------------------------------------------
# The whole run is one function called on the last line: bash reads a script as it runs it, so an edit of this
# file during a long build must not change what a running build does next.
main() {
  export GOWORK=off GO111MODULE=on CGO_ENABLED=0

  mode=build
  case ${1:-} in
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --list|--check|--update) mode=${1#--}; shift ;;
    -*) die "unknown option $1 (try --help)" ;;
  esac
  tools=("$@")
  [[ ${#tools[@]} -gt 0 ]] || tools=("${ALL_TOOLS[@]}")
  for t in "${tools[@]}"; do tool_info "$t"; done   # validates the names

  case $mode in
    list)
      for t in "${tools[@]}"; do
        tool_info "$t"
        if is_current "$t"; then s=ok; elif [[ -e $BIN/$t ]]; then s=stale; else s=missing; fi
        printf '%-15s %-10s tools/%-12s %s\n' "$t" "$VERSION" "$MOD" "$s"
      done
      exit 0 ;;
    check)
      rc=0
      for t in "${tools[@]}"; do is_current "$t" || { say "$t is missing or stale: run scripts/tools.sh $t"; rc=1; }; done
      exit $rc ;;
    update)
      command -v go >/dev/null || die "go not found on PATH"
      mods=()
      for t in "${tools[@]}"; do tool_info "$t"; [[ " ${mods[*]-} " == *" $MOD "* ]] || mods+=("$MOD"); done
      for m in "${mods[@]}"; do update_module "$m"; done
      say "updated ${mods[*]}; now run scripts/tools.sh"
      exit 0 ;;
  esac

  mkdir -p "$BIN" "$LOG_DIR"
  if command -v flock >/dev/null; then   # two concurrent runs (make -j) must not race
    exec 9>"$BIN/.lock"
    flock 9
  fi

  all_start=$(date +%s)
  built=0 reused=0
  for t in "${tools[@]}"; do
    tool_info "$t"
    if is_current "$t"; then say "$t $VERSION up to date"; continue; fi
    if try_reuse "$t"; then reused=$((reused + 1)); continue; fi
    build_tool "$t"
    built=$((built + 1))
  done
  say "$built built, $reused reused from PATH, $(( ${#tools[@]} - built - reused )) already current; total $(( $(date +%s) - all_start ))s ($BIN)"
}

main "$@"
