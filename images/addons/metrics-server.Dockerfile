# metrics-server from its pinned Go module (scripts/tools.sh → .tools/bin/metrics-server) on the project's Debian
# base. Built by scripts/cluster/addon-images.sh; the build context holds only the binary.
ARG BASE_IMAGE=sagamesh-build/debian:bookworm
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 65532 metrics-server \
 && useradd --system --uid 65532 --gid metrics-server --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin metrics-server
COPY metrics-server /usr/local/bin/metrics-server
USER 65532:65532
EXPOSE 10250
ENTRYPOINT ["/usr/local/bin/metrics-server"]
