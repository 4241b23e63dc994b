# Prometheus from its pinned Go module (scripts/tools.sh → .tools/bin/prometheus: kubernetes SD, no web UI assets)
# on the project's Debian base. Built by scripts/cluster/addon-images.sh; the build context holds only the binary.
ARG BASE_IMAGE=sagamesh-build/debian:bookworm
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 65532 prometheus \
 && useradd --system --uid 65532 --gid prometheus --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin prometheus \
 && install -d -o 65532 -g 65532 /prometheus
COPY prometheus /usr/local/bin/prometheus
USER 65532:65532
WORKDIR /prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
