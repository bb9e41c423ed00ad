#!/usr/bin/env bash
# Builds (and optionally tests) tributary's container image with Debian's podman, on a
# machine that may have no registry access: the base image is made here with debootstrap
# (Debian's mirror is the only source it needs) and the build stage gets this machine's
# Rust toolchain mounted in, instead of pulling debian:bookworm-slim and rust:1.95.
#
#   scripts/container.sh build   # image localhost/tributary:latest (≈ 15 min cold)
#   scripts/container.sh test    # build, then the container test (tests/container.rs)
#
# With Docker Hub reachable, plain `docker build -t tributary .` does the same.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=localhost/tributary-base:bookworm
IMAGE="${TRIBUTARY_IMAGE:-localhost/tributary:latest}"

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
missing=()
for p in podman debootstrap runc; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "container: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The flags podman needs on this machine, found by trying: crun refuses hosts whose
# cgroups are in hybrid mode (runc runs there), and a container may not be given more
# processes or open files than the runtime is allowed to set (some VMs refuse their own
# hard limits; 4096 processes is plenty for one server).
RUN_FLAGS=()
runtime() {
  local rt n
  for rt in "" runc; do
    for n in "$(ulimit -Hu)" 4096; do
      local flags=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=$n:$n")
      [ -n "$rt" ] && flags=(--runtime "$rt" "${flags[@]}")
      if podman run --rm "${flags[@]}" "$BASE_IMAGE" true >/dev/null 2>&1; then
        RUN_FLAGS=("${flags[@]}")
        return
      fi
    done
  done
  echo "container: podman cannot run a container here (tried crun and runc)" >&2
  exit 1
}

base() {
  if podman image exists "$BASE_IMAGE"; then
    return
  fi
  echo "container: making $BASE_IMAGE with debootstrap (Debian 12, minbase)"
  local root
  root=$(mktemp -d /var/tmp/tributary-rootfs.XXXXXX)
  $SUDO debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/dev/null
  printf '%s\n' \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" \
    | $SUDO tee "$root/etc/apt/sources.list" >/dev/null
  $SUDO rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  $SUDO tar -C "$root" -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE" >/dev/null
  $SUDO rm -rf "$root"
}

build() {
  base
  runtime
  local rustup="${RUSTUP_HOME:-$HOME/.rustup}" cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
  if [ ! -d "$rustup/toolchains" ] || [ ! -x "$cargo_bin/cargo" ]; then
    echo "container: no rustup toolchain in $rustup (with cargo in $cargo_bin)" >&2
    exit 1
  fi
  # This machine's extra CA certificates (a TLS-inspecting egress proxy's), so that npm
  # and cargo inside the build reach their registries as they do here.
  local CA=()
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    CA=(-v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro)
  fi
  echo "container: building $IMAGE"
  podman build "${RUN_FLAGS[@]}" --format docker \
    --build-arg BUILDER="$BASE_IMAGE" --build-arg BASE="$BASE_IMAGE" \
    -v "$rustup:/usr/local/rustup:ro" -v "$cargo_bin:/usr/local/cargo/bin:ro" \
    "${CA[@]}" \
    -t "$IMAGE" .
}

case "${1:-build}" in
  build) build ;;
  test)
    build
    export TRIBUTARY_IMAGE="$IMAGE" TRIBUTARY_PODMAN_RUN_FLAGS="${RUN_FLAGS[*]}"
    cargo test --locked -p tributary --test container -- --ignored --nocapture
    ;;
  *) echo "usage: $0 [build|test]" >&2; exit 2 ;;
esac
