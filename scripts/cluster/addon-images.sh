#!/usr/bin/env bash
# The offline cluster's add-on images, sagamesh-build/<name>:<pin>, from the pinned Go binaries (scripts/tools.sh)
# on the project's Debian base image (scripts/cluster/offline-images.sh). Nothing is pulled.
#
#   addon-images.sh            build every image that is missing or stale (and the binaries it needs)
#   addon-images.sh --names    print the image names on one line (for `kind load`), build nothing
#   addon-images.sh --check    exit 1 if an image is missing or stale, build nothing
#
# An image is stale when its label io.sagamesh.build-hash differs from the hash of its Dockerfile, its binary
# and the base image id: a rerun with nothing changed builds nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=/dev/null
source "$ROOT/tools/versions.env"

# The add-ons' base: the Debian minbase image (scripts/cluster/offline-images.sh base)
BASE_IMAGE=${OFFLINE_BASE_IMAGE:?tools/versions.env has no OFFLINE_BASE_IMAGE}
HASH_LABEL=io.sagamesh.build-hash  # docker.sh trim removes our untagged images by it
LOG_DIR=$ROOT/.tools/logs
# image name, binary (a scripts/tools.sh tool, in .tools/bin), the tools/versions.env key of its tag.
# cdk8s/src/addons/images.ts names the same images from the same keys (cdk8s/test/addons.test.ts checks it).
IMAGES=(
  "nats-server nats-server NATS_SERVER_VERSION"
  "prometheus prometheus PROMETHEUS_APP_VERSION"
  "metrics-server metrics-server METRICS_SERVER_VERSION"
  "kube-state-metrics kube-state-metrics KUBE_STATE_METRICS_VERSION"
)

say() { printf '[addon-images] %s\n' "$*" >&2; }
die() { printf '[addon-images] ERROR: %s\n' "$*" >&2; exit 1; }

ref() {  # version key -> sagamesh-build/<name>:<version>
  local name=$1 key=$2
  [[ -n ${!key:-} ]] || die "tools/versions.env has no $key (the tag of sagamesh-build/$name)"
  printf 'sagamesh-build/%s:%s' "$name" "${!key}"
}

names() {
  local out=() name bin key
  for row in "${IMAGES[@]}"; do
    read -r name bin key <<<"$row"
    out+=("$(ref "$name" "$key")")
  done
  echo "${out[*]}"
}

sha() { sha256sum | cut -d' ' -f1; }

# What decides an image's content: its Dockerfile, its binary and the base image.
want_hash() {  # name bin -> hash
  local base_id
  base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE")
  { cat "$ROOT/images/addons/$1.Dockerfile"; sha256sum <"$ROOT/.tools/bin/$2"; echo "$base_id"; } | sha
}

have_hash() { docker image inspect -f "{{index .Config.Labels \"$HASH_LABEL\"}}" "$1" 2>/dev/null || true; }

mode=build
case ${1:-} in
  '') ;;
  --names) names; exit 0 ;;
  --check) mode=check ;;
  -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

# The engine `make up` uses (a private dockerd when no other answers) and Debian's BuildKit-capable CLI.
engine_env=$(bash "$ROOT/scripts/cluster/docker.sh" env) ||
  die "no Docker engine answers: run 'bash scripts/cluster/docker.sh start' first"
eval "$engine_env"
docker image inspect "$BASE_IMAGE" >/dev/null 2>&1 ||
  die "base image $BASE_IMAGE is missing: build it with 'bash scripts/cluster/offline-images.sh base', then re-run"

start=$SECONDS
if [[ $mode == check ]]; then
  rc=0
  for row in "${IMAGES[@]}"; do
    read -r name bin key <<<"$row"
    image=$(ref "$name" "$key")
    if [[ ! -x $ROOT/.tools/bin/$bin || "$(have_hash "$image")" != "$(want_hash "$name" "$bin")" ]]; then
      say "$image is missing or stale: run scripts/cluster/addon-images.sh"; rc=1
    fi
  done
  exit $rc
fi

mkdir -p "$LOG_DIR"
bins=()
for row in "${IMAGES[@]}"; do read -r _ bin _ <<<"$row"; bins+=("$bin"); done
say "binaries: ${bins[*]} (scripts/tools.sh builds what is missing; one Go build at a time)"
nice -n 10 bash "$ROOT/scripts/tools.sh" "${bins[@]}"

built=0
for row in "${IMAGES[@]}"; do
  read -r name bin key <<<"$row"
  image=$(ref "$name" "$key")
  hash=$(want_hash "$name" "$bin")
  if [[ "$(have_hash "$image")" == "$hash" ]]; then
    say "$image up to date"
    continue
  fi
  t0=$SECONDS
  say "building $image ..."
  ctx=$(mktemp -d)
  log=$LOG_DIR/image-$name.log
  # A symlink (a binary reused from PATH) would not enter the build context: copy the file itself.
  cp -L "$ROOT/.tools/bin/$bin" "$ctx/$bin"
  if ! DOCKER_BUILDKIT=1 docker build --progress=plain \
      --build-arg "BASE_IMAGE=$BASE_IMAGE" \
      --label "$HASH_LABEL=$hash" --label "org.opencontainers.image.version=${!key}" \
      -f "$ROOT/images/addons/$name.Dockerfile" -t "$image" "$ctx" >"$log" 2>&1; then
    rm -rf "$ctx"
    tail -n 25 "$log" | sed 's/^/    /' >&2
    die "building $image failed (log: $log); fix images/addons/$name.Dockerfile or the engine, then re-run"
  fi
  rm -rf "$ctx"
  size=$(docker image inspect -f '{{.Size}}' "$image")
  say "$image built in $((SECONDS - t0))s ($((size / 1024 / 1024)) MiB)"
  built=$((built + 1))
done
say "$built built, $(( ${#IMAGES[@]} - built )) up to date; total $((SECONDS - start))s"
