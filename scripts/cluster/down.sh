#!/usr/bin/env bash
# make down: delete the kind cluster (a missing cluster is fine), then stop the private dockerd if `make up OFFLINE=1`
# started one (its images stay on disk, so the next make up is quick). Keeps .dev/cluster (API key, Linkerd certs).
set -euo pipefail
STEPS=2
# shellcheck source=scripts/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
step "Delete the kind cluster '$CLUSTER'"
if [[ "$DRY_RUN" == 1 ]]; then
  run kind delete cluster --name "$CLUSTER"
elif bash "$ROOT/scripts/cluster/docker.sh" status >/dev/null 2>&1; then
  eval "$(bash "$ROOT/scripts/cluster/docker.sh" env)"
  run kind delete cluster --name "$CLUSTER"
else
  # No engine answers (a make down ran already, or none was ever started): there is no cluster to delete.
  note "no Docker engine answers: no kind cluster runs, nothing to delete"
fi
note "kept $STATE (API keys, Linkerd certificates); rm -rf it for a fresh identity"
step "Stop the Docker engine if make up started it"
run bash "$ROOT/scripts/cluster/docker.sh" stop
