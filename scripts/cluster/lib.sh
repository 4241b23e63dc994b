# shellcheck shell=bash disable=SC2034  # variables used by the scripts that source this file
# Shared helpers of scripts/up.sh and scripts/cluster/*.sh (sourced, not run).
# DRY_RUN=1: print every command instead of running it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=/dev/null
source "$ROOT/tools/versions.env"
# shellcheck source=/dev/null
source "$ROOT/charts/versions.env"
# The pinned kubectl and helm (make tools) win over whatever else is on PATH.
export PATH="$ROOT/.tools/bin:$PATH"

CLUSTER="${CLUSTER_NAME:-sagamesh}"
CONTEXT="kind-$CLUSTER"
NAMESPACE=sagamesh
IMAGE_TAG="${IMAGE_TAG:-dev}"
DRY_RUN="${DRY_RUN:-0}"
STATE="$ROOT/.dev/cluster"   # git-ignored: API keys, Linkerd certificates, image ids
NODE="${NODE:-$ROOT/node_modules/.bin/node}"

STEP=0
STEPS="${STEPS:-1}"
BOLD='' PLAIN=''
if [[ -t 1 ]]; then BOLD=$'\033[1m' PLAIN=$'\033[0m'; fi
step() {
  STEP=$((STEP + 1))
  printf '\n%s[%4ss] (%d/%d) %s%s\n' "$BOLD" "$SECONDS" "$STEP" "$STEPS" "$*" "$PLAIN"
}
note() { printf '         %s\n' "$*"; }

# run CMD ARGS...: one command, shown quoted, run unless DRY_RUN=1.
run() {
  printf '  + %s\n' "$(printf '%q ' "$@" | sed 's/ $//')"
  [[ "$DRY_RUN" == 1 ]] || "$@"
}
# run_sh 'pipeline || fallback': a shell line (pipes, ||), shown verbatim, run unless DRY_RUN=1.
run_sh() {
  printf '  + %s\n' "$1"
  [[ "$DRY_RUN" == 1 ]] || bash -o pipefail -c "$1"
}

kc() { run kubectl --context "$CONTEXT" "$@"; }

# The workloads that get an image: the contracts' services plus the operator (one list, in code).
workloads() {
  (cd "$ROOT" && "$NODE" --input-type=module -e "const c = await import('@sagamesh/contracts'); console.log([...c.ServiceNames, 'operator'].join(' '))")
}

# Every identity on the bus (a NATS user each: the services, the operator, the admin).
nats_identities() {
  (cd "$ROOT" && "$NODE" --input-type=module -e "const c = await import('@sagamesh/contracts'); console.log(c.NatsIdentities.join(' '))")
}

# The offline path (make up OFFLINE=1): the kind config with the locally built node image, written by
# scripts/cluster/offline-images.sh; the Node runtime image the app is built on; the CA bundle of this machine's
# TLS-intercepting proxy, handed to builds as a secret (never baked into an image).
OFFLINE_KIND_CONFIG="$STATE/kind-config.offline.yaml"
HOST_CA_BUNDLE="${HOST_CA_BUNDLE:-${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}}"

# unserved_api_versions FILE: the group/versions FILE uses that the cluster does not serve (one a line).
unserved_api_versions() {
  local av
  grep -h '^apiVersion:' "$1" | awk '{print $2}' | sort -u | while read -r av; do
    [[ "$av" == */* ]] || continue # the core group is always served
    kubectl --context "$CONTEXT" get --raw "/apis/$av" >/dev/null 2>&1 || echo "$av"
  done
}
