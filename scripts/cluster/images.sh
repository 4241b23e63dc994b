#!/usr/bin/env bash
# make images: build sagamesh/<workload>:$IMAGE_TAG for every workload from the one Dockerfile.
set -euo pipefail
STEPS=1
# shellcheck source=scripts/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT"
read -r -a WORKLOADS <<<"$(workloads)"
step "Images sagamesh/<workload>:$IMAGE_TAG"
for w in "${WORKLOADS[@]}"; do
  run docker build --build-arg "SERVICE=$w" -t "sagamesh/$w:$IMAGE_TAG" -f Dockerfile .
done
