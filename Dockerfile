# One image per sagamesh workload, from the workspace lockfile. BuildKit builds it (Docker 20.10 or later, with
# DOCKER_BUILDKIT=1 where BuildKit is not the default):
#   docker build --build-arg SERVICE=gateway -t sagamesh/gateway:dev .
#   docker build --build-arg SERVICE=operator -t sagamesh/operator:dev .
# Offline (no registry), on the Node base image built locally, behind a TLS-intercepting proxy whose CA bundle npm
# needs (given as a build secret: it is never written to a layer):
#   docker build --build-arg SERVICE=gateway --build-arg NODE_IMAGE=sagamesh-build/node:24.21.0 \
#     --secret id=npm_ca,src=/etc/ssl/certs/ca-certificates.crt -t sagamesh/gateway:dev .
# SERVICE is a services/<name> workspace or `operator`. The image holds the workload bundled with the libraries it
# imports (scripts/lib/build.ts: one plain-JavaScript module, so Node never loads its type stripper, ~17 MB of RSS),
# the tracing preload, the launcher, and its production dependencies; the gateway's also the built saga explorer
# (ui/dist). No TypeScript source reaches the final stage.
# No `# syntax=` line: the engine's built-in Dockerfile frontend is used, so a build pulls nothing.

# Node 24 LTS, the version the repository pins (root package.json devDependency `node`).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS deps
ARG SERVICE
RUN test -n "$SERVICE" || { echo 'build with --build-arg SERVICE=<gateway|orders|orchestrator|inventory|payments|shipping|notifications|operator>' >&2; exit 1; }
WORKDIR /app
# npm ci checks the lockfile against every workspace's package.json, so all of them come in (small, cached).
COPY package.json package-lock.json ./
COPY libs/contracts/package.json libs/contracts/
COPY libs/runtime/package.json libs/runtime/
COPY libs/participant/package.json libs/participant/
COPY libs/testing/package.json libs/testing/
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
COPY ui/package.json ui/
# Only this workload's production dependencies (and those of the libraries it links).
# The npm_ca secret is optional: without it npm trusts the image's own CAs (enough with a direct connection).
# For the gateway, the saga explorer's build tools too, apart in /ui-build: they build ui/dist in the sources stage
# and never reach the image (/ui-build/node_modules stays empty for the other workloads).
RUN --mount=type=cache,target=/root/.npm --mount=type=secret,id=npm_ca \
    ws="services/$SERVICE"; [ "$SERVICE" = operator ] && ws=operator; \
    if [ -s /run/secrets/npm_ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/npm_ca; fi; \
    npm ci --omit=dev --workspace "$ws" --no-audit --no-fund --no-update-notifier --ignore-scripts \
 && esbuild="$(node -p "require('./package-lock.json').packages['node_modules/esbuild'].version")" \
 && mkdir -p /bundler && cd /bundler \
 && npm install --no-save --no-package-lock --no-audit --no-fund --no-update-notifier --ignore-scripts "esbuild@$esbuild" \
 && cd /app && mkdir -p /ui-build/node_modules \
 && if [ "$SERVICE" = gateway ]; then \
      cp -a package.json package-lock.json libs services operator cdk8s dashboards ui /ui-build/ && cd /ui-build \
      && npm ci --workspace ui --no-audit --no-fund --no-update-notifier --ignore-scripts; \
    fi

# What this workload runs, built from the sources (.dockerignore already dropped tests, the test rigs and
# everything else): its bundle and the tracing preload (scripts/lib/build.ts, the build make dev and the tests run
# too), the launcher. A stage of its own, so one SERVICE arg picks services/<name> or operator/.
FROM ${NODE_IMAGE} AS sources
ARG SERVICE
WORKDIR /ctx
COPY package.json ./
COPY scripts/lib/build.ts scripts/lib/
COPY libs/ libs/
COPY services/ services/
COPY operator/ operator/
COPY ui/ ui/
# The workspace links (node_modules/@sagamesh/*) the bundler resolves the libraries through, and esbuild.
COPY --from=deps /app/node_modules node_modules/
COPY --from=deps /bundler/node_modules node_modules/
COPY --from=deps /ui-build/node_modules node_modules/
# The gateway serves the saga explorer from /app/ui/dist (its UI_DIR default), built here with Vite.
RUN ws="services/$SERVICE"; [ "$SERVICE" = operator ] && ws=operator; \
    test -f "$ws/src/main.ts" || { echo "no $ws/src/main.ts: SERVICE=$SERVICE is not a workload" >&2; exit 1; }; \
    node scripts/lib/build.ts "$ws" \
 && mkdir -p /out \
 && cp -a --parents "$ws/dist" libs/runtime/dist libs/runtime/src/node-service.sh /out/ \
 && ln -s "/app/$ws/dist/main.mjs" /out/main.mjs \
 && if [ "$SERVICE" = gateway ]; then \
      (cd ui && node ../node_modules/vite/bin/vite.js build --logLevel warn) && cp -a --parents ui/dist /out/; \
    fi

# tini, the init the runtime stage runs as PID 1, and jemalloc, the allocator the launcher preloads (idle memory
# goes back to the system: libs/runtime/src/node-service.sh). The offline base image ships Debian's packages; the
# upstream node image has neither, so they are installed here (this stage only: the runtime stage runs nothing).
FROM ${NODE_IMAGE} AS init
RUN if ! command -v tini >/dev/null || ! dpkg -s libjemalloc2 >/dev/null 2>&1; then \
      apt-get update && apt-get install -y --no-install-recommends tini libjemalloc2 && rm -rf /var/lib/apt/lists/*; \
    fi; \
    install -D -m 0755 "$(command -v tini)" /out/tini \
 && install -D -m 0644 "$(dpkg -L libjemalloc2 | grep '/libjemalloc\.so\.2$')" /out/libjemalloc.so.2

FROM ${NODE_IMAGE} AS runtime
ARG SERVICE
# scripts/cluster/docker.sh trim removes the images of ours a rebuild untagged by this label.
LABEL io.sagamesh.workload=${SERVICE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=init /out/tini /usr/bin/tini
COPY --from=init /out/libjemalloc.so.2 /usr/local/lib/libjemalloc.so.2
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
# main.mjs is a link to the workload's bundle; Node follows it to the real file (its import.meta.url is the real path).
COPY --from=sources /out/ ./
# The node image's `node` user, by number so Kubernetes can verify runAsNonRoot. Files stay root-owned (read-only).
USER 1000:1000
# Node must not be PID 1: the kernel drops every signal PID 1 has no handler for, its own SIGKILL included, so
# crash-after-commit would not end the container. tini forwards SIGTERM to node and exits with node's status
# (137 after a SIGKILL), so the kubelet restarts the container.
ENTRYPOINT ["tini", "--"]
# libs/runtime/src/node-service.sh starts node with the flags and environment every workload runs with (the same
# script scripts/lib/platform.ts starts the local platform with): `exec node --expose-gc --import <the preload bundle>`.
CMD ["sh", "/app/libs/runtime/src/node-service.sh", "/app/main.mjs"]
