# Dockerfile -- the funnelstream binary in a small Debian 12 image.
#
# Two stages, so the image carries no compiler:
#   build    debian:bookworm with the toolchain and the -dev packages of
#            scripts/setup, minus what only tests, fuzzing and formatting need
#            (tests and benchmarks are not built here). libmsgpack-dev drags in
#            the C++ headers and Boost; that weight stays in this stage.
#   runtime  debian:bookworm-slim with only the shared libraries the binary
#            links (librdkafka, libuv, msgpack-c, libfyaml, liburcu, xxHash;
#            jsmn is header-only), CA certificates for a Kafka reached over TLS,
#            the bundled configs in /etc/funnelstream, and an unprivileged user.
#
#   docker build -t funnelstream .
#   docker run --rm funnelstream --help
#   docker run --rm funnelstream generate --events 1000 --customers 50 --format json
#
# docker-compose.yml runs it against a real Kafka broker.

FROM debian:bookworm AS build

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake make gcc libc6-dev pkg-config \
      librdkafka-dev libuv1-dev libmsgpack-dev libfyaml-dev liburcu-dev \
      libxxhash-dev libjsmn-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# The whole context (.dockerignore leaves out build trees and .git), so a
# file the CMake build comes to need is never missing here.
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFS_BUILD_TESTS=OFF -DFS_BUILD_BENCH=OFF \
 && cmake --build build --parallel "$(nproc)" \
 && cmake --install build --prefix /opt/funnelstream --strip


FROM debian:bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      librdkafka1 libuv1 libmsgpackc2 libfyaml0 liburcu8 libxxhash0 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 funnelstream \
 && useradd --no-log-init --uid 10001 --gid funnelstream --home-dir /var/lib/funnelstream \
      --create-home --shell /usr/sbin/nologin funnelstream

COPY --from=build /opt/funnelstream/bin/funnelstream /usr/local/bin/funnelstream
COPY configs/ /etc/funnelstream/

# Numeric, so a runtime that insists on a non-root user can check it.
USER 10001:10001
WORKDIR /var/lib/funnelstream
ENTRYPOINT ["funnelstream"]
CMD ["--help"]
