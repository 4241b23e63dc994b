#!/usr/bin/env bash
# make down: delete the kind cluster (a missing cluster is fine). Keeps .dev/cluster (API key, Linkerd certs).
set -euo pipefail
STEPS=1
# shellcheck source=scripts/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
step "Delete the kind cluster '$CLUSTER'"
run kind delete cluster --name "$CLUSTER"
note "kept $STATE (API key, Linkerd certificates); rm -rf it for a fresh identity"
