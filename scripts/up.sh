#!/usr/bin/env bash
# make up: the whole platform on a local kind cluster.
#   preflight → kind cluster → metrics-server → Linkerd (certs, Gateway API + Linkerd CRDs, control plane,
#   readiness check) → NATS → kube-prometheus-stack → images → kind load → synth → apply → rollouts → URLs.
# Idempotent: a second run reuses the cluster, upgrades releases in place (no change), applies the same
# manifests (server-side apply: no change) and restarts only workloads whose image changed.
# DRY_RUN=1 prints every command it would run, without running any (preflight then only reports).
# IMAGE_TAG (default dev), CLUSTER_NAME (default sagamesh).
set -euo pipefail
STEPS=13
# shellcheck source=scripts/cluster/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/cluster/lib.sh"
cd "$ROOT"

HELM=(helm --kube-context "$CONTEXT")
helm_install() { # release namespace chart repo version values [extra args...]
  local release=$1 ns=$2 chart=$3 repo=$4 version=$5 values=$6
  shift 6
  run "${HELM[@]}" upgrade --install "$release" "$chart" --repo "$repo" --version "$version" \
    --namespace "$ns" --create-namespace -f "charts/values/$values" --wait --timeout 10m "$@"
}

[[ "$DRY_RUN" == 1 ]] && echo "DRY_RUN=1: printing the plan; nothing is run."

step "Preflight: docker, kind, kubectl, helm, node, openssl"
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
check docker "docker version --format '{{.Client.Version}}'" \
  "install Docker (https://docs.docker.com/get-docker/) and start it; kind runs the cluster's nodes as containers"
check kind "kind version" "go install sigs.k8s.io/kind@$KIND_VERSION (or https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
check kubectl "kubectl version --client | head -1" "make tools (builds the pinned kubectl $KUBERNETES_VERSION into .tools/bin)"
check helm "helm version --short" "make tools (builds the pinned helm $HELM_VERSION into .tools/bin)"
check node "'$NODE' --version" "make deps (npm ci installs Node 24 and the workspace into node_modules)" "$NODE"
check openssl "openssl version" "install OpenSSL (apt-get install openssl / brew install openssl); it makes Linkerd's certificates"
if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  printf '  ✗ %-8s the Docker daemon does not answer — start Docker Desktop, or: sudo systemctl start docker\n' docker
  missing=1
fi
if [[ "$missing" == 1 ]]; then
  if [[ "$DRY_RUN" == 1 ]]; then note "(dry run: continuing with the plan despite the missing tools above)"
  else echo "preflight failed: install what is missing above, then run make up again." >&2; exit 1; fi
fi
read -r -a WORKLOADS <<<"$(workloads)"

step "kind cluster '$CLUSTER' (1 control plane + 2 workers, $KIND_NODE_IMAGE; reused if it exists)"
run_sh "kind get clusters | grep -qx '$CLUSTER' || kind create cluster --name '$CLUSTER' --config kind-config.yaml --wait 180s"
kc cluster-info

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

step "NATS $NATS_CHART_VERSION (JetStream, file storage)"
helm_install nats nats nats "$NATS_REPO" "$NATS_CHART_VERSION" nats.yaml

step "kube-prometheus-stack $KUBE_PROMETHEUS_STACK_CHART_VERSION (Prometheus meshed, Grafana on :3000)"
helm_install kube-prometheus-stack monitoring kube-prometheus-stack "$PROMETHEUS_COMMUNITY_REPO" "$KUBE_PROMETHEUS_STACK_CHART_VERSION" kube-prometheus-stack.yaml

step "Images sagamesh/<service>:$IMAGE_TAG (one Dockerfile, build arg SERVICE)"
for w in "${WORKLOADS[@]}"; do
  run docker build --build-arg "SERVICE=$w" -t "sagamesh/$w:$IMAGE_TAG" -f Dockerfile .
done

step "Load the images into the kind nodes"
images=()
for w in "${WORKLOADS[@]}"; do images+=("sagamesh/$w:$IMAGE_TAG"); done
run kind load docker-image --name "$CLUSTER" "${images[@]}"

step "Synthesize the manifests (cdk8s → cdk8s/dist)"
run "$NODE" cdk8s/src/main.ts --image-tag "$IMAGE_TAG"

step "Apply: CRDs, namespace, gateway API key Secret, platform (server-side apply)"
kc apply --server-side --field-manager=sagamesh -f cdk8s/dist/00-crds.yaml
kc wait --for=condition=Established --timeout=60s -f cdk8s/dist/00-crds.yaml
kc apply --server-side --field-manager=sagamesh -f cdk8s/dist/01-namespace.yaml
# The API key is generated once, kept in the git-ignored state dir, and never printed by this script.
run_sh "mkdir -p '$STATE' && chmod 700 '$STATE' && { test -s '$STATE/api-key' || (umask 077; openssl rand -hex 24 | tr -d '\\n' > '$STATE/api-key'); }"
run_sh "kubectl --context $CONTEXT -n $NAMESPACE create secret generic sagamesh-gateway --from-file=api-keys='$STATE/api-key' --dry-run=client -o yaml | kubectl --context $CONTEXT apply --server-side --field-manager=sagamesh -f -"
kc apply --server-side --field-manager=sagamesh -f cdk8s/dist/02-platform.yaml

step "Roll out: restart workloads whose image changed, wait for every Deployment"
run bash scripts/cluster/restart-changed.sh "$CONTEXT" "$NAMESPACE" "$IMAGE_TAG" "$STATE" "${WORKLOADS[@]}"
for w in "${WORKLOADS[@]}"; do
  kc -n "$NAMESPACE" rollout status "deploy/$w" --timeout=5m
done

if [[ "$DRY_RUN" == 1 ]]; then step "Plan printed in ${SECONDS}s (DRY_RUN=1: nothing was run). Once run, it ends with:"; else step "Ready in ${SECONDS}s"; fi
cat <<EOF
  Gateway     http://localhost:8080        (API key: cat .dev/cluster/api-key)
  Grafana     http://localhost:3000        (anonymous viewer; admin password:
              kubectl --context $CONTEXT -n monitoring get secret kube-prometheus-stack-grafana -o jsonpath='{.data.admin-password}' | base64 -d)
  Prometheus  kubectl --context $CONTEXT -n monitoring port-forward svc/kube-prometheus-stack-prometheus 9090

Next:
  1. curl -sS -H "Authorization: Bearer \$(cat .dev/cluster/api-key)" -H 'Content-Type: application/json' \\
       -d '{"customerId":"c-1","items":[{"sku":"sku-1","quantity":2}]}' http://localhost:8080/api/orders
  2. kubectl --context $CONTEXT apply -f examples/ && kubectl --context $CONTEXT get sagas -w
  3. make load        # then watch the HPAs: kubectl --context $CONTEXT -n $NAMESPACE get hpa -w
EOF
