# tributary in a container: a Rust build stage, then a Debian slim runtime holding the
# binary, the FFmpeg runtime libraries it links and the fonts mix labels are drawn with.
#
#   docker build -t tributary .
#   docker run -p 8080:8080 -p 1935:1935 -p 8443:8443/udp -v tributary-data:/var/lib/tributary tributary
#
# The first start prints the generated admin token and a demo app (docker logs).
# BUILDER and BASE are arguments so that a machine without Docker Hub can build from its
# own images (scripts/container.sh: a debootstrap base plus the host's Rust toolchain).
ARG BUILDER=docker.io/library/rust:1.95-slim-bookworm
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BUILDER} AS build
# What the official rust image sets; a builder made from a bare Debian gets its toolchain
# mounted there.
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev libavutil-dev \
      libswscale-dev libswresample-dev pkg-config clang libclang-dev binutils \
      nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The console embeds mpegts.js from npm (pinned by its package-lock.json). A machine
# whose egress goes through a TLS-inspecting proxy mounts that proxy's CA certificates in
# /usr/local/share/ca-certificates for the build (scripts/container.sh does); npm and
# cargo then trust them. Nothing of it reaches the runtime image.
RUN update-ca-certificates >/dev/null \
 && cd crates/tributary/console && npm ci --no-audit --no-fund --loglevel=error
# The target directory is a build cache (kept between builds, never in the image).
RUN --mount=type=cache,target=/src/target,id=tributary-target \
    --mount=type=cache,target=/usr/local/cargo/registry,id=tributary-cargo-registry \
    cargo build --release --locked -p tributary \
 && objcopy --strip-debug target/release/tributary /usr/local/bin/tributary

FROM ${BASE}
# The FFmpeg 5.1 runtime libraries the binary links (Debian 12's avcodec, avformat, avutil,
# swscale, swresample), the Noto CJK and DejaVu fonts of mix labels, CA roots for HTTPS
# callbacks, curl for the health check.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libavcodec59 libavformat59 libavutil57 libswscale6 \
      libswresample4 fonts-noto-cjk fonts-dejavu-core ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/tributary --shell /usr/sbin/nologin tributary \
 && install -d -o tributary -g tributary -m 0700 /var/lib/tributary
COPY --from=build /usr/local/bin/tributary /usr/local/bin/tributary
USER tributary
WORKDIR /var/lib/tributary
# Inside the container every address is the container's own; publish the ports you need.
# WebRTC clients must reach the UDP port at an address they can route to: set
# TRIBUTARY_RTC_PUBLIC_IP to the host's address when the port is mapped.
ENV TRIBUTARY_HTTP=0.0.0.0:8080 \
    TRIBUTARY_RTMP=0.0.0.0:1935 \
    TRIBUTARY_RTC_UDP=0.0.0.0:8443 \
    TRIBUTARY_DATA=/var/lib/tributary \
    RUST_LOG=info
# 8080 API, HTTP-FLV, HLS, WHIP/WHEP signalling, console; 1935 RTMP; 8443 WebRTC media
# (UDP, and ICE-TCP on the same port number).
EXPOSE 8080/tcp 1935/tcp 8443/udp 8443/tcp
# The store (SQLite), the generated admin token, images: keep it on a volume.
VOLUME ["/var/lib/tributary"]
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/readyz >/dev/null || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tributary"]
CMD ["serve"]
