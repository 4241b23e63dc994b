# nats-server from its pinned Go module (scripts/tools.sh → .tools/bin/nats-server) on the project's Debian base.
# Built by scripts/cluster/addon-images.sh, whose build context holds only the binary. The platform's NATS
# construct passes `-c <config>`.
ARG BASE_IMAGE=sagamesh-build/debian:bookworm
FROM ${BASE_IMAGE}
RUN groupadd --system --gid 65532 nats \
 && useradd --system --uid 65532 --gid nats --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nats
COPY nats-server /usr/local/bin/nats-server
USER 65532:65532
# client, cluster routes, HTTP monitoring
EXPOSE 4222 6222 8222
ENTRYPOINT ["/usr/local/bin/nats-server"]
