#!/usr/bin/env bash
# make status: what runs in the kind cluster, and where to reach it.
set -euo pipefail
STEPS=5
# shellcheck source=scripts/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# The engine make up used (a private dockerd under OFFLINE=1).
if bash "$ROOT/scripts/cluster/docker.sh" status >/dev/null 2>&1; then eval "$(bash "$ROOT/scripts/cluster/docker.sh" env)"; fi
if ! kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "no kind cluster '$CLUSTER' (make up creates it)"
  exit 0
fi
step "Nodes"
kc get nodes -o wide
step "Helm releases (none under OFFLINE=1: its add-ons are plain manifests)"
run helm --kube-context "$CONTEXT" list --all-namespaces || true
step "sagamesh workloads"
kc -n "$NAMESPACE" get deploy,pods -o wide
step "Autoscaling (HPA current/desired replicas, CPU)"
kc -n "$NAMESPACE" get hpa
step "Endpoints"
printf '  gateway  http://localhost:8080  readyz: %s\n' "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://localhost:8080/readyz || echo down)"
printf '  grafana  http://localhost:3000  health: %s\n' "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://localhost:3000/api/health || echo down)"
