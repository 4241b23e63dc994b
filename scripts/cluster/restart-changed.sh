#!/usr/bin/env bash
# restart-changed.sh CONTEXT NAMESPACE TAG STATE_DIR WORKLOAD...
# A rebuilt image keeps its tag (dev), so Kubernetes sees no change: restart exactly the Deployments whose
# image id differs from the one recorded at the last `make up` (none on a rerun: idempotent).
set -euo pipefail
context=$1 namespace=$2 tag=$3 state=$4
shift 4
mkdir -p "$state/images"
for w in "$@"; do
  id=$(docker image inspect --format '{{.Id}}' "sagamesh/$w:$tag")
  f="$state/images/$w.id"
  if [[ -s "$f" && "$(cat "$f")" != "$id" ]]; then
    kubectl --context "$context" -n "$namespace" rollout restart "deploy/$w"
  fi
  echo "$id" >"$f"
done
