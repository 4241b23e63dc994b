# syntax=docker/dockerfile:1
# One image per sagamesh workload, from the workspace lockfile:
#   docker build --build-arg SERVICE=gateway -t sagamesh/gateway:dev .
#   docker build --build-arg SERVICE=operator -t sagamesh/operator:dev .
# SERVICE is a services/<name> workspace or `operator`. Node 24 runs the TypeScript directly (type
# stripping), so there is no compile step: the image holds the sources of the workload and of the two
# workspaces every workload imports (contracts, kit) plus their production dependencies.

# Node 24 LTS, the version the repository pins (root package.json devDependency `node`).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS deps
ARG SERVICE
RUN test -n "$SERVICE" || { echo 'build with --build-arg SERVICE=<gateway|orders|orchestrator|inventory|payments|shipping|notifications|operator>' >&2; exit 1; }
WORKDIR /app
# npm ci checks the lockfile against every workspace's package.json, so all of them come in (small, cached).
COPY package.json package-lock.json ./
COPY services/contracts/package.json services/contracts/
COPY services/kit/package.json services/kit/
COPY services/gateway/package.json services/gateway/
COPY services/orders/package.json services/orders/
COPY services/orchestrator/package.json services/orchestrator/
COPY services/inventory/package.json services/inventory/
COPY services/payments/package.json services/payments/
COPY services/shipping/package.json services/shipping/
COPY services/notifications/package.json services/notifications/
COPY operator/package.json operator/
COPY cdk8s/package.json cdk8s/
COPY dashboards/package.json dashboards/
# Only this workload's production dependencies (and those of the workspaces it links: kit, contracts).
RUN --mount=type=cache,target=/root/.npm \
    ws="services/$SERVICE"; [ "$SERVICE" = operator ] && ws=operator; \
    npm ci --omit=dev --workspace "$ws" --no-audit --no-fund --ignore-scripts

# The sources this workload runs: its own workspace plus contracts and kit (.dockerignore already dropped
# tests and everything else). A stage of its own, so one SERVICE arg picks services/<name> or operator/.
FROM ${NODE_IMAGE} AS sources
ARG SERVICE
WORKDIR /ctx
COPY services/ services/
COPY operator/ operator/
RUN ws="services/$SERVICE"; [ "$SERVICE" = operator ] && ws=operator; \
    test -f "$ws/src/main.ts" || { echo "no $ws/src/main.ts: SERVICE=$SERVICE is not a workload" >&2; exit 1; }; \
    mkdir -p /out \
 && cp -a --parents services/contracts services/kit "$ws" /out/ \
 && ln -s "/app/$ws/src/main.ts" /out/main.ts

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
# main.ts is a link to the workload's entry; Node follows it to the real file (outside node_modules, so it strips types).
COPY --from=sources /out/ ./
# The node image's `node` user, by number so Kubernetes can verify runAsNonRoot. Files stay root-owned (read-only).
USER 1000:1000
CMD ["node", "--import", "@sagamesh/kit/otel-preload", "/app/main.ts"]
