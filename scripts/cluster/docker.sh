#!/usr/bin/env bash
# The Docker engine that `make up` uses.
#
#   docker.sh start     use the Docker that answers; if none does, start a private dockerd (Debian's docker.io,
#                       installed with apt when missing) on its own socket, and remember that we started it
#   docker.sh stop      stop the private dockerd if this script started it (images stay cached on disk)
#   docker.sh env       print the `export DOCKER_HOST=... PATH=...` lines a shell needs to reach it
#   docker.sh status    say which engine answers and how
#   docker.sh isolate   drop forwarding from the kind network to anywhere but itself (nothing leaves the machine)
#   docker.sh trim      remove the images our rebuilds untagged; keep the private dockerd's build cache to its most
#                       recently used 3 GiB (SAGAMESH_BUILD_CACHE_KEEP, as docker reads it: 3GB is 3 GiB)
#
# Why a runc shim: on some machines (CI here) the capability bounding set lacks CAP_SYS_RESOURCE, and runc fails on
# every privileged container (kind's nodes) with "unable to apply caps: operation not permitted". When — and only
# when — the capability is missing, dockerd gets a default runtime that drops it from the container spec.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

PRIVATE_DIR=/run/sagamesh-docker
PRIVATE_SOCK=$PRIVATE_DIR/docker.sock
DATA_ROOT=${SAGAMESH_DOCKER_DATA:-/var/lib/sagamesh-docker}
SHIM=$DATA_ROOT/runc-no-sys-resource
LOG=$ROOT/.dev/cluster/dockerd.log
# Debian's docker CLI (20.10) builds with its built-in BuildKit; a newer CLI without the buildx plugin refuses to.
CLI_DIR=$ROOT/.tools/docker-cli
KIND_NETWORK=kind
# BuildKit's cache (npm's downloads, every stage of every rebuilt image) grows with each make up, and Docker 20.10
# collects none of it unless told to: 15 GB of it, and 57 GB of data root in all, on a machine that ran make up for
# weeks. A few GB holds one full set of builds, so a rebuild stays quick.
BUILD_CACHE_KEEP=${SAGAMESH_BUILD_CACHE_KEEP:-3GB}
# The labels our builds put on their images (Dockerfile, scripts/cluster/addon-images.sh).
WORKLOAD_LABEL=io.sagamesh.workload
ADDON_LABEL=io.sagamesh.build-hash

say() { printf '  %s\n' "$*"; }
die() { printf 'docker.sh: %s\n' "$*" >&2; exit 1; }

# The CLI our scripts put first on PATH: Debian's when installed (BuildKit built in), else whatever `docker` is.
cli() {
  if [[ -x /usr/bin/docker ]]; then
    mkdir -p "$CLI_DIR"
    ln -sf /usr/bin/docker "$CLI_DIR/docker"
    echo "$CLI_DIR"
  fi
}

answers() { DOCKER_HOST=$1 "${DOCKER:-docker}" info >/dev/null 2>&1; }

# Which DOCKER_HOST answers: the caller's, the default socket, or ours.
engine() {
  if [[ -n "${DOCKER_HOST:-}" ]] && answers "$DOCKER_HOST"; then echo "$DOCKER_HOST"; return; fi
  if answers unix:///var/run/docker.sock; then echo unix:///var/run/docker.sock; return; fi
  if answers "unix://$PRIVATE_SOCK"; then echo "unix://$PRIVATE_SOCK"; return; fi
  return 1
}

cap_sys_resource_missing() {
  local bnd
  bnd=$(awk '/^CapBnd:/ {print $2}' /proc/self/status)
  # CAP_SYS_RESOURCE is capability 24.
  (( (0x$bnd >> 24 & 1) == 0 ))
}

write_shim() {
  local real
  real=$(command -v runc) || die "runc is missing: apt-get install runc"
  mkdir -p "$DATA_ROOT"
  cat >"$SHIM.tmp" <<EOF
#!/bin/sh
# Written by sagamesh scripts/cluster/docker.sh: this machine's capability bounding set lacks CAP_SYS_RESOURCE, so
# drop it from the bundle's spec before runc applies the capabilities.
# runc create/run read the capabilities from <bundle>/config.json; runc exec (kind's docker exec) from --process FILE.
bundle=.
process=
prev=
for a in "\$@"; do
  case "\$prev" in --bundle|-b) bundle=\$a ;; --process|-p) process=\$a ;; esac
  case "\$a" in --bundle=*) bundle=\${a#--bundle=} ;; --process=*) process=\${a#--process=} ;; esac
  prev=\$a
done
for f in "\$bundle/config.json" "\$process"; do
  if [ -n "\$f" ] && [ -f "\$f" ]; then
    perl -0pi -e 's/"CAP_SYS_RESOURCE"\\s*,?\\s*//g; s/,\\s*\\]/]/g' "\$f"
  fi
done
exec $real "\$@"
EOF
  chmod 755 "$SHIM.tmp"
  mv "$SHIM.tmp" "$SHIM"
}

install_engine() {
  command -v dockerd >/dev/null && [[ -x /usr/bin/docker ]] && return
  [[ $(id -u) == 0 ]] || die "no Docker engine answers and dockerd is not installed: install Docker (https://docs.docker.com/get-docker/) or run as root so this script can apt-get install docker.io"
  say "installing Debian's docker.io (dockerd, containerd, runc) with apt ..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io iptables iproute2 >/dev/null
}

start() {
  local dir host
  dir=$(cli)
  [[ -n "$dir" ]] && export PATH="$dir:$PATH"
  if host=$(engine); then
    say "Docker answers on $host ($(DOCKER_HOST=$host docker version --format '{{.Server.Version}}' 2>/dev/null))"
    return
  fi
  install_engine
  dir=$(cli); export PATH="$dir:$PATH"
  [[ $(id -u) == 0 ]] || die "no Docker engine answers; starting a private dockerd needs root (or start Docker yourself)"
  mkdir -p "$PRIVATE_DIR" "$DATA_ROOT" "$(dirname "$LOG")"
  local runtime_args=()
  if cap_sys_resource_missing; then
    write_shim
    runtime_args=(--add-runtime "sagamesh-runc=$SHIM" --default-runtime sagamesh-runc)
    say "this machine's capability bounding set lacks CAP_SYS_RESOURCE: dockerd runs containers through $SHIM"
  fi
  say "starting a private dockerd on unix://$PRIVATE_SOCK (data $DATA_ROOT, log $LOG)"
  # setsid: the daemon outlives this script and the make that ran it; `make down` stops it.
  setsid dockerd --host "unix://$PRIVATE_SOCK" --data-root "$DATA_ROOT" --exec-root "$PRIVATE_DIR/exec" \
    --pidfile "$PRIVATE_DIR/dockerd.pid" --storage-driver overlay2 "${runtime_args[@]}" \
    >>"$LOG" 2>&1 </dev/null &
  echo started >"$PRIVATE_DIR/started-by-sagamesh"
  local i
  for ((i = 0; i < 60; i++)); do
    if answers "unix://$PRIVATE_SOCK"; then
      say "dockerd ready in ${i}s ($(DOCKER_HOST=unix://$PRIVATE_SOCK docker version --format '{{.Server.Version}}'))"
      return
    fi
    sleep 1
  done
  tail -20 "$LOG" >&2
  die "the private dockerd did not answer within 60 s; see $LOG"
}

stop() {
  if [[ ! -f "$PRIVATE_DIR/started-by-sagamesh" ]]; then say "no private dockerd of ours is running"; return; fi
  local pid
  pid=$(cat "$PRIVATE_DIR/dockerd.pid" 2>/dev/null || true)
  # A stopped engine leaves its networks' bridges on the host; the kind network's would hold 172.18.0.0/16 against
  # the next engine's (another data root). Removed while the engine runs (the cluster is already deleted).
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && DOCKER_HOST=unix://$PRIVATE_SOCK "${DOCKER:-docker}" network rm "$KIND_NETWORK" >/dev/null 2>&1; then
    say "removed the docker network '$KIND_NETWORK' (it is created again, with its rule, by the next make up)"
  fi
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    say "stopping the private dockerd (pid $pid); its images stay in $DATA_ROOT for the next make up"
    kill "$pid"
    local i
    for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    say "$DATA_ROOT holds $(du -sh "$DATA_ROOT" 2>/dev/null | cut -f1) (images, build cache); after make down, rm -rf it to free that space (the next make up then builds every image again)"
  fi
  rm -f "$PRIVATE_DIR/started-by-sagamesh"
}

# After the builds: the images a rebuild untagged (ours only, by label: up to ~400 MB a workload each time its code
# changes), and on our own engine the build cache beyond BUILD_CACHE_KEEP. Another engine's cache is its owner's.
trim() {
  local host dir label pruned reclaimed
  host=$(engine) || die "no Docker engine answers: run bash scripts/cluster/docker.sh start"
  export DOCKER_HOST=$host
  dir=$(cli); [[ -n "$dir" ]] && export PATH="$dir:$PATH"
  for label in "$WORKLOAD_LABEL" "$ADDON_LABEL"; do
    pruned=$(docker image prune -f --filter "label=$label")
    # Their layers may live on in the build cache, so the space they held can read 0B: count the images too.
    say "untagged images labelled $label: $(grep -c '^deleted: ' <<<"$pruned" || true) removed, $(sed -n 's/^Total reclaimed space: //p' <<<"$pruned") reclaimed"
  done
  if [[ "$host" != "unix://$PRIVATE_SOCK" || ! -f "$PRIVATE_DIR/started-by-sagamesh" ]]; then
    say "build cache: the engine on $host is not ours, its cache is left as it is (docker builder prune trims it)"
    return
  fi
  reclaimed=$(docker builder prune -f --keep-storage "$BUILD_CACHE_KEEP" | sed -n 's/^Total reclaimed space: //p')
  say "build cache: ${reclaimed:-0B} reclaimed, at most $BUILD_CACHE_KEEP kept"
}

print_env() {
  local host dir
  host=$(engine) || die "no Docker engine answers: run bash scripts/cluster/docker.sh start"
  dir=$(cli)
  echo "export DOCKER_HOST=$host"
  [[ -n "$dir" ]] && echo "export PATH=$dir:\$PATH"
  echo "export DOCKER_BUILDKIT=1"
}

# Created before any node starts (kind reuses an existing network named "kind"), so the rule is in place before the
# first packet: a pod, or a ClusterIP that kube-proxy has not programmed yet, can reach the cluster's own network and
# this host, never another address.
isolate() {
  local host bridge
  host=$(engine) || die "no Docker engine answers: run bash scripts/cluster/docker.sh start"
  export DOCKER_HOST=$host
  if ! docker network inspect "$KIND_NETWORK" >/dev/null 2>&1; then
    remove_stale_bridges
    # kind's own defaults for its network (IPv4 only here), so kind adopts it as is.
    docker network create --driver bridge --subnet 172.18.0.0/16 --gateway 172.18.0.1 \
      -o com.docker.network.bridge.enable_ip_masquerade=true -o com.docker.network.driver.mtu=1500 \
      "$KIND_NETWORK" >/dev/null
    say "created the docker network '$KIND_NETWORK'"
  fi
  bridge=$(isolation_bridge)
  iptables -N DOCKER-USER 2>/dev/null || true
  # Rules of ours for bridges that are gone (a network removed by make down, another engine's) are dropped.
  local rule link
  while read -r rule; do
    link=$(awk '{print $4}' <<<"$rule")
    if [[ "$link" != "$bridge" ]] && ! ip link show "$link" >/dev/null 2>&1; then
      iptables -D DOCKER-USER -i "$link" ! -o "$link" -j DROP && say "dropped the rule of $link, a bridge that is gone"
    fi
  done < <(iptables -S DOCKER-USER | grep -E '^-A DOCKER-USER -i br-[0-9a-f]+ ! -o br-[0-9a-f]+ -j DROP$' || true)
  if ! iptables -C DOCKER-USER -i "$bridge" ! -o "$bridge" -j DROP 2>/dev/null; then
    iptables -I DOCKER-USER -i "$bridge" ! -o "$bridge" -j DROP
  fi
  say "DOCKER-USER drops forwarding from $bridge (network '$KIND_NETWORK') to any other interface"
}

# A bridge that holds the kind subnet but belongs to no network of this engine was left by an engine that stopped
# (another data root): with it in place the host routes the subnet to a dead bridge and the nodes cannot reach each
# other. One with ports attached is in use: then say so instead of touching it.
remove_stale_bridges() {
  local link
  command -v ip >/dev/null || die "ip is missing (the bridges of the kind network are checked with it): apt-get install iproute2"
  for link in $(ip -o -4 addr show | awk '$4 == "172.18.0.1/16" {print $2}'); do
    if [[ -n "$(ip -o link show master "$link" 2>/dev/null)" ]]; then
      die "the kind subnet 172.18.0.0/16 is in use on $link by another Docker engine: stop it (or its containers), then rerun"
    fi
    ip link delete "$link" && say "removed $link, a bridge with the kind subnet left by a Docker engine that is not running"
  done
}

isolation_bridge() {
  local id
  id=$(docker network inspect -f '{{.Id}}' "$KIND_NETWORK")
  echo "br-${id:0:12}"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  isolate) isolate ;;
  trim) trim ;;
  bridge) DOCKER_HOST=$(engine) isolation_bridge ;;
  status)
    if host=$(engine); then say "Docker answers on $host"; else say "no Docker engine answers"; exit 1; fi ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
