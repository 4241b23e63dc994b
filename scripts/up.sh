#!/usr/bin/env bash
# make up: the whole platform on a local kind cluster.
#   online (default):  preflight → kind cluster (upstream node image) → metrics-server → Linkerd (certs, Gateway API +
#                      Linkerd CRDs, control plane, readiness check) → kube-prometheus-stack → images → kind load → synth →
#                      apply → rollouts → URLs.
#   OFFLINE=1:         for a machine with Docker (or root to start one) but no registry: preflight → Docker engine (a
#                      private dockerd when none answers) + the cluster network cut off from the uplink → every image
#                      built locally from pinned packages (base, Node, kind node, NATS, metrics-server, kube-state-metrics,
#                      Prometheus) → kind cluster → app images → kind load → synth → apply (objects whose CRDs are absent
#                      are skipped, said so) → rollouts → URLs. No Linkerd and no Grafana: neither can be built offline.
# Idempotent: a second run reuses the cluster and the images, upgrades releases in place (no change), applies the same
# manifests (server-side apply: no change) and restarts only workloads whose image changed.
# DRY_RUN=1 prints every command it would run, without running any (preflight then only reports).
# IMAGE_TAG (default dev), CLUSTER_NAME (default sagamesh), OFFLINE (default 0).
set -euo pipefail
OFFLINE="${OFFLINE:-0}"
if [[ "$OFFLINE" == 1 ]]; then STEPS=10; else STEPS=12; fi
# shellcheck source=scripts/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster/lib.sh"
cd "$ROOT"

HELM=(helm --kube-context "$CONTEXT")
# Docker keeps the images and the kind nodes' disks under its root dir. Measured with make up OFFLINE=1 on an empty
# data root (the offline images' inputs cached in .tools): 15.8 GB more in use at the peak (kind load), 4.3 GB of it
# left after make down. A rerun on the cluster after a change to libs/runtime (every workload image rebuilt and loaded,
# and the kind node image too): 4.4 GB more at the peak. GB here are 10^9 bytes. Short of that, a build or kind load fails midway with "no space
# left on device"; better to say so before starting. DISK_NEEDED_GB overrides the figure (0: no check).
disk_check() {
  local root free_gb need_gb
  [[ "$DRY_RUN" != 1 && "${DISK_NEEDED_GB:-}" != 0 ]] || return 0
  root=$(docker info --format '{{.DockerRootDir}}' 2>/dev/null) || return 0
  free_gb=$(df -Pk "$root" 2>/dev/null | awk 'NR == 2 {printf "%d", $4 * 1024 / 1e9}')
  if [[ -z "$free_gb" ]]; then
    note "disk: Docker keeps its data in $root, not on this machine's file systems (a VM?): not checked"
    return 0
  fi
  if [[ -n "${DISK_NEEDED_GB:-}" ]]; then need_gb=$DISK_NEEDED_GB
  elif kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then need_gb=5
  else need_gb=17; fi
  if ((free_gb < need_gb)); then
    echo "make up needs about $need_gb GB free where Docker keeps its data ($root); $free_gb GB are free." >&2
    echo "Free some: make down, then docker image prune and docker builder prune (or, for make up's own dockerd, rm -rf /var/lib/sagamesh-docker: every image is built again); or DISK_NEEDED_GB=0 make up to try anyway." >&2
    exit 1
  fi
  note "disk: $free_gb GB free where Docker keeps its data ($root); this run needs about $need_gb GB"
}
helm_install() { # release namespace chart repo version values [extra args...]
  local release=$1 ns=$2 chart=$3 repo=$4 version=$5 values=$6
  shift 6
  run "${HELM[@]}" upgrade --install "$release" "$chart" --repo "$repo" --version "$version" \
    --namespace "$ns" --create-namespace -f "charts/values/$values" --wait --timeout 10m "$@"
}

[[ "$DRY_RUN" == 1 ]] && echo "DRY_RUN=1: printing the plan; nothing is run."
[[ "$OFFLINE" == 1 ]] && echo "OFFLINE=1: every image is built here from pinned packages; nothing is pulled. Linkerd and Grafana are left out (they cannot be built offline); the mesh annotations stay inert."

if [[ "$OFFLINE" == 1 ]]; then
  step "Preflight: docker, kind, kubectl, node, openssl"
else
  step "Preflight: docker, kind, kubectl, helm, node, openssl"
fi
missing=0
check() { # name version-command hint [executable]
  local name=$1 version_cmd=$2 hint=$3 exe=${4:-$1} version
  if command -v "$exe" >/dev/null 2>&1; then
    version=$(bash -c "$version_cmd" 2>/dev/null | head -1) || true
    printf '  ✓ %-8s %s\n' "$name" "${version:-(version unknown)}"
  else
    printf '  ✗ %-8s missing — %s\n' "$name" "$hint"
    missing=1
  fi
}
if [[ "$OFFLINE" == 1 ]]; then
  # The Docker engine comes in the next step (started here when none answers); kind is one of the pinned tools.
  if command -v dockerd >/dev/null 2>&1 || docker info >/dev/null 2>&1; then
    printf '  ✓ %-8s %s\n' docker "engine: $(bash scripts/cluster/docker.sh status 2>/dev/null | sed 's/^ *//' || echo 'none answers yet: the next step starts a private dockerd')"
  elif [[ $(id -u) == 0 ]]; then
    printf '  ✓ %-8s %s\n' docker "not installed: the next step installs Debian's docker.io with apt"
  else
    printf '  ✗ %-8s missing — install Docker (https://docs.docker.com/get-docker/), or run as root so make up can start one\n' docker
    missing=1
  fi
  check kind "kind version" "make tools (builds the pinned kind $KIND_VERSION into .tools/bin)"
else
  check docker "docker version --format '{{.Client.Version}}'" \
    "install Docker (https://docs.docker.com/get-docker/) and start it; kind runs the cluster's nodes as containers"
  check kind "kind version" "make tools (builds the pinned kind $KIND_VERSION into .tools/bin)"
fi
check kubectl "kubectl version --client | head -1" "make tools (builds the pinned kubectl $KUBERNETES_VERSION into .tools/bin)"
[[ "$OFFLINE" == 1 ]] || check helm "helm version --short" "make tools (builds the pinned helm $HELM_VERSION into .tools/bin)"
check node "'$NODE' --version" "make deps (npm ci installs Node 24 and the workspace into node_modules)" "$NODE"
check openssl "openssl version" "install OpenSSL (apt-get install openssl / brew install openssl); it makes the API key and Linkerd's certificates"
if [[ "$OFFLINE" != 1 ]] && command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  printf '  ✗ %-8s the Docker daemon does not answer — start Docker Desktop, or: sudo systemctl start docker (or make up OFFLINE=1 starts one)\n' docker
  missing=1
fi
if [[ "$missing" == 1 ]]; then
  if [[ "$DRY_RUN" == 1 ]]; then note "(dry run: continuing with the plan despite the missing tools above)"
  else echo "preflight failed: install what is missing above, then run make up again." >&2; exit 1; fi
fi
read -r -a WORKLOADS <<<"$(workloads)"
[[ "$OFFLINE" == 1 ]] || disk_check

KIND_CONFIG=kind-config.yaml
if [[ "$OFFLINE" == 1 ]]; then
  step "Docker engine, and the cluster network cut off from the uplink (nothing leaves this machine)"
  run bash scripts/cluster/docker.sh start
  # The engine may be ours: the rest of this script (kind, docker build) talks to whichever answered.
  [[ "$DRY_RUN" == 1 ]] || eval "$(bash scripts/cluster/docker.sh env)"
  disk_check
  run bash scripts/cluster/docker.sh isolate

  step "Offline images: base, Node $NODE_VERSION, kind node $OFFLINE_NODE_IMAGE, add-ons (built once, then reused)"
  run bash scripts/cluster/offline-images.sh
  run bash scripts/cluster/addon-images.sh
  KIND_CONFIG=$OFFLINE_KIND_CONFIG
  NODE_IMAGE_SHOWN=$OFFLINE_NODE_IMAGE
else
  NODE_IMAGE_SHOWN=$KIND_NODE_IMAGE
fi

step "kind cluster '$CLUSTER' (1 control plane + 2 workers, $NODE_IMAGE_SHOWN; reused if it exists)"
if [[ "$OFFLINE" == 1 ]]; then
  # Our nodes do not come back after the private dockerd stopped (a reboot, a session's end): such a cluster is
  # deleted and built again rather than reused half-dead.
  run_sh "! kind get clusters 2>/dev/null | grep -qx '$CLUSTER' || docker inspect -f '{{.State.Running}}' '$CLUSTER-control-plane' 2>/dev/null | grep -qx true || kind delete cluster --name '$CLUSTER'"
fi
run_sh "kind get clusters | grep -qx '$CLUSTER' || kind create cluster --name '$CLUSTER' --config $KIND_CONFIG --wait 180s"
kc cluster-info

if [[ "$OFFLINE" != 1 ]]; then
  step "metrics-server $METRICS_SERVER_CHART_VERSION (resource metrics for the HPAs)"
  helm_install metrics-server kube-system metrics-server "$METRICS_SERVER_REPO" "$METRICS_SERVER_CHART_VERSION" metrics-server.yaml

  step "Linkerd $LINKERD_CONTROL_PLANE_CHART_VERSION: certificates, Gateway API $GATEWAY_API_VERSION + Linkerd CRDs, control plane"
  run bash scripts/cluster/linkerd-certs.sh "$STATE/linkerd"
  kc apply --server-side --field-manager=sagamesh \
    -f "https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API_VERSION/standard-install.yaml"
  helm_install linkerd-crds linkerd linkerd-crds "$LINKERD_REPO" "$LINKERD_CRDS_CHART_VERSION" linkerd-crds.yaml
  helm_install linkerd-control-plane linkerd linkerd-control-plane "$LINKERD_REPO" "$LINKERD_CONTROL_PLANE_CHART_VERSION" linkerd-control-plane.yaml \
    --set-file identityTrustAnchorsPEM="$STATE/linkerd/ca.crt" \
    --set-file identity.issuer.tls.crtPEM="$STATE/linkerd/issuer.crt" \
    --set-file identity.issuer.tls.keyPEM="$STATE/linkerd/issuer.key"

  step "Linkerd check (what \`linkerd check\` verifies first): control plane rolled out, injector webhook registered"
  for d in linkerd-identity linkerd-destination linkerd-proxy-injector; do
    kc -n linkerd rollout status "deploy/$d" --timeout=5m
  done
  # Without the injector's webhook, the app's pods would start unmeshed (and the mesh policy would not apply).
  kc get mutatingwebhookconfiguration linkerd-proxy-injector-webhook-config

  step "kube-prometheus-stack $KUBE_PROMETHEUS_STACK_CHART_VERSION (Prometheus meshed, Grafana on :3000)"
  helm_install kube-prometheus-stack monitoring kube-prometheus-stack "$PROMETHEUS_COMMUNITY_REPO" "$KUBE_PROMETHEUS_STACK_CHART_VERSION" kube-prometheus-stack.yaml
fi

step "Images sagamesh/<service>:$IMAGE_TAG (one Dockerfile, build arg SERVICE)"
BUILD_ARGS=()
if [[ "$OFFLINE" == 1 ]]; then
  BUILD_ARGS=(--build-arg "NODE_IMAGE=$OFFLINE_NODE_RUNTIME_IMAGE")
  # npm ci inside the build reaches the registry through this machine's TLS proxy: its CA goes in as a build secret.
  [[ -s "$HOST_CA_BUNDLE" ]] && BUILD_ARGS+=(--secret "id=npm_ca,src=$HOST_CA_BUNDLE")
fi
for w in "${WORKLOADS[@]}"; do
  run docker build --build-arg "SERVICE=$w" "${BUILD_ARGS[@]}" -t "sagamesh/$w:$IMAGE_TAG" -f Dockerfile .
done
run bash scripts/cluster/docker.sh trim

step "Load the images into the kind nodes"
images=()
for w in "${WORKLOADS[@]}"; do images+=("sagamesh/$w:$IMAGE_TAG"); done
everywhere=()
if [[ "$OFFLINE" == 1 ]]; then
  read -r -a addon_images <<<"$(bash scripts/cluster/addon-images.sh --names)"
  for i in "${addon_images[@]}"; do
    # NATS also runs on the control plane (three servers on three nodes); the rest never does (its taint).
    if [[ "$i" == */nats-server:* ]]; then everywhere+=("$i"); else images+=("$i"); fi
  done
fi
# kind skips an image a node already has with the same id, so a rerun loads nothing.
run kind load docker-image --name "$CLUSTER" --nodes "$CLUSTER-worker,$CLUSTER-worker2" "${images[@]}"
((${#everywhere[@]} == 0)) || run kind load docker-image --name "$CLUSTER" "${everywhere[@]}"

step "Synthesize the manifests (cdk8s → cdk8s/dist)"
SYNTH_FLAGS=(--image-tag "$IMAGE_TAG" --faults)
[[ "$OFFLINE" == 1 ]] && SYNTH_FLAGS+=(--offline)
run "$NODE" cdk8s/src/main.ts "${SYNTH_FLAGS[@]}"

step "Apply: CRDs, namespaces, the API keys and NATS passwords Secrets, platform and add-ons (server-side apply); provision the streams"
kc apply --server-side --field-manager=sagamesh -f cdk8s/dist/00-crds.yaml
kc wait --for=condition=Established --timeout=60s -f cdk8s/dist/00-crds.yaml
kc apply --server-side --field-manager=sagamesh -f cdk8s/dist/01-namespace.yaml
# The API keys — a customer key (/api/*, its own orders) and an admin key (/admin/* and every order) — are generated
# once, kept in the git-ignored state dir, and never printed by this script.
run_sh "mkdir -p '$STATE' && chmod 700 '$STATE' && { test -s '$STATE/api-key' || (umask 077; openssl rand -hex 24 | tr -d '\\n' > '$STATE/api-key'); }"
run_sh "{ test -s '$STATE/admin-key' || (umask 077; openssl rand -hex 24 | tr -d '\\n' > '$STATE/admin-key'); }"
run_sh "kubectl --context $CONTEXT -n $NAMESPACE create secret generic sagamesh-gateway --from-file=api-keys='$STATE/api-key' --from-file=admin-api-keys='$STATE/admin-key' --dry-run=client -o yaml | kubectl --context $CONTEXT apply --server-side --field-manager=sagamesh -f -"
# One NATS password per identity on the bus (the services, the operator, the admin that provisions streams), made once
# like the API keys, as the Secret nats-users in the NATS namespace (the servers) and in the app namespace (each pod
# reads its own key). The provisioning Job is deleted first so this apply runs it again with the images' specs.
run_sh "mkdir -p '$STATE/nats' && chmod 700 '$STATE/nats'"
for u in $(nats_identities); do
  run_sh "{ test -s '$STATE/nats/$u' || (umask 077; openssl rand -hex 24 | tr -d '\\n' > '$STATE/nats/$u'); }"
done
for ns in nats "$NAMESPACE"; do
  run_sh "kubectl --context $CONTEXT -n $ns create secret generic nats-users --from-file='$STATE/nats' --dry-run=client -o yaml | kubectl --context $CONTEXT apply --server-side --field-manager=sagamesh -f -"
done
kc -n "$NAMESPACE" delete job nats-provision --ignore-not-found --wait=true
# The rest of dist/, in order; a file whose kinds the cluster does not serve (Linkerd, Gateway API, prometheus-operator
# offline) is skipped and named, so `set -e` never stops short of the rollouts.
if [[ "$DRY_RUN" == 1 ]]; then
  printf '  + %s\n' "kubectl --context $CONTEXT apply --server-side --field-manager=sagamesh -f cdk8s/dist/<file>  # each further file in order; skipped when the cluster does not serve its kinds"
else
  for f in cdk8s/dist/*.yaml; do
    case "$f" in */00-crds.yaml | */01-namespace.yaml) continue ;; esac
    absent=$(unserved_api_versions "$f")
    if [[ -n "$absent" ]]; then
      note "skipped $f: the cluster does not serve $(echo "$absent" | paste -sd, -) (their CRDs are not installed)"
      continue
    fi
    kc apply --server-side --field-manager=sagamesh -f "$f"
  done
fi

step "Roll out: restart workloads whose image changed, wait for every workload"
run bash scripts/cluster/restart-changed.sh "$CONTEXT" "$NAMESPACE" "$IMAGE_TAG" "$STATE" "${WORKLOADS[@]}"
# NATS and the streams first: the services wait for both before they are ready.
kc -n nats rollout status statefulset/nats --timeout=5m
kc -n "$NAMESPACE" wait --for=condition=complete job/nats-provision --timeout=10m
for w in "${WORKLOADS[@]}"; do
  kc -n "$NAMESPACE" rollout status "deploy/$w" --timeout=5m
done
if [[ "$OFFLINE" == 1 ]]; then
  for d in kube-system/metrics-server monitoring/kube-state-metrics monitoring/prometheus; do
    kc -n "${d%%/*}" rollout status "deploy/${d#*/}" --timeout=5m
  done
fi

if [[ "$DRY_RUN" == 1 ]]; then step "Plan printed in ${SECONDS}s (DRY_RUN=1: nothing was run). Once run, it ends with:"; else step "Ready in ${SECONDS}s"; fi
if [[ "$OFFLINE" == 1 ]]; then
  cat <<EOF
  Gateway     http://localhost:8080        (API key: cat .dev/cluster/api-key; admin key for /admin/*: cat .dev/cluster/admin-key)
  Prometheus  kubectl --context $CONTEXT -n monitoring port-forward svc/prometheus 9090
  (offline: no Grafana and no Linkerd; dashboards/ queries run against this Prometheus)
  Docker      eval "\$(bash scripts/cluster/docker.sh env)"   # to use docker/kind by hand on the same engine
EOF
else
  cat <<EOF
  Gateway     http://localhost:8080        (API key: cat .dev/cluster/api-key; admin key for /admin/*: cat .dev/cluster/admin-key)
  Grafana     http://localhost:3000        (anonymous viewer; admin password:
              kubectl --context $CONTEXT -n monitoring get secret kube-prometheus-stack-grafana -o jsonpath='{.data.admin-password}' | base64 -d)
  Prometheus  kubectl --context $CONTEXT -n monitoring port-forward svc/kube-prometheus-stack-prometheus 9090
EOF
fi
cat <<EOF

Next:
  1. curl -sS -H "Authorization: Bearer \$(cat .dev/cluster/api-key)" -H 'Content-Type: application/json' \\
       -d '{"customerId":"c-1","items":[{"sku":"sku-1","quantity":2}]}' http://localhost:8080/api/orders
  2. kubectl --context $CONTEXT apply -f examples/ && kubectl --context $CONTEXT get sagas -w
  3. make load        # then watch the HPAs: kubectl --context $CONTEXT -n $NAMESPACE get hpa -w
EOF
