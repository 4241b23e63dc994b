#!/usr/bin/env bash
# make test-cluster: the cluster tier. `make up OFFLINE=1` (images built here, a kind cluster, the platform), then the
# *.cluster.test.ts files on the live cluster, then `make down`. Prints each phase with its elapsed time.
#   KEEP_CLUSTER=1   leave the cluster (and the dockerd) running afterwards, to look around
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$SECONDS
# The failed tests and their errors, printed again after make down so a log's last lines say what failed and why.
recap=$(mktemp)
phase() { printf '\n[test-cluster %5ss] %s\n' "$((SECONDS - start))" "$*"; }
down() {
  local rc=$?
  if [[ "${KEEP_CLUSTER:-0}" == 1 ]]; then
    phase "KEEP_CLUSTER=1: the cluster stays up (make down removes it)"
  else
    phase "make down"
    make --no-print-directory down || true
  fi
  [[ -s "$recap" ]] && { echo; cat "$recap"; }
  rm -f "$recap"
  phase "done (exit $rc)"
  exit "$rc"
}
trap down EXIT

phase "make up OFFLINE=1"
t=$SECONDS
make --no-print-directory up OFFLINE=1
phase "make up OFFLINE=1 took $((SECONDS - t))s"
# kubectl, kind and docker as make up used them, for the tests' own calls.
eval "$(bash scripts/cluster/docker.sh env)"
export PATH="$PWD/.tools/bin:$PATH"

phase "cluster tier (*.cluster.test.ts)"
t=$SECONDS
node_modules/.bin/node scripts/test.ts --recap "$recap" cluster
phase "cluster tier took $((SECONDS - t))s"
