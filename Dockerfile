# Airavata Gateway container image. Build: docker build -t airavata-gateway:0.1.0 .
# Stage 1 compiles a release binary with the Swift runtime linked in statically; stage 2 is a
# slim Debian with only what that binary loads at run time.

FROM swift:6.3-bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libhiredis-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Tests/ comes along because Package.swift names the test targets; it is not built.
COPY Package.* ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product airavata-gateway \
 && install -D "$(swift build -c release --show-bin-path)/airavata-gateway" /out/airavata-gateway

FROM debian:bookworm-slim
# libhiredis0.14: the Redis codec; libstdc++6: the Swift runtime's C++ part;
# ca-certificates: rediss:// verifies Redis against the system trust store;
# tini: PID 1 that forwards SIGTERM to the gateway, so it drains instead of being killed.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libhiredis0.14 libstdc++6 ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 airavata \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin airavata
COPY --from=build /out/airavata-gateway /usr/local/bin/airavata-gateway
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/airavata-gateway"]
CMD ["serve"]
