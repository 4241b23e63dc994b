# kube-state-metrics from its pinned Go module (scripts/tools.sh → .tools/bin/kube-state-metrics) on the project's
# Debian base. Built by scripts/cluster/addon-images.sh; the build context holds only the binary.
ARG BASE_IMAGE=sagamesh-build/debian:bookworm
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 65532 kube-state-metrics \
 && useradd --system --uid 65532 --gid kube-state-metrics --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin kube-state-metrics
COPY kube-state-metrics /usr/local/bin/kube-state-metrics
USER 65532:65532
# metrics, telemetry (its own metrics and /readyz)
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/kube-state-metrics"]
