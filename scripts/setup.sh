#!/usr/bin/env bash
# Installs what tributary needs to build, run and test on Debian, and nothing twice.
# Safe to run again and again: it only installs what is missing.
set -euo pipefail

# Debian packages: FFmpeg (CLI for tests, libraries for the mixer), clang/pkg-config for
# the FFmpeg bindings, curl for the README examples, python3-venv for the test that
# drives the Tencent dialect with the vendor's official Python SDK, and the fonts mix
# labels are drawn with (Noto Sans/Serif CJK = Source Han Sans/Serif: Latin and CJK), and
# Chromium, the system browser the WebRTC tests drive (Playwright never downloads one), and
# systemd's tools, which check the packaged unit, and PostgreSQL, whose binaries the
# store tests run a private server with (initdb + pg_ctl in a temporary directory; on a
# machine run by systemd, Debian's package also starts its own cluster, which the tests
# do not use).
PACKAGES=(ffmpeg libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev
          libavutil-dev libswscale-dev libswresample-dev pkg-config clang libclang-dev
          curl ca-certificates python3 python3-venv fonts-noto-cjk fonts-dejavu-core
          chromium systemd postgresql)

# `setup.sh --bench` adds what the benchmarks compare against: nginx with the RTMP module.
if [ "${1:-}" = "--bench" ]; then
  PACKAGES+=(nginx libnginx-mod-rtmp)
fi

# npm installs the browser players (hls.js, mpegts.js) the playback tests load; Debian's
# Node.js and npm when the machine has none.
if ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: no Rust toolchain found; install Rust 1.95 or newer (rustup) and run again" >&2
  exit 1
fi
# rustfmt and clippy are part of the test command.
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c" >/dev/null 2>&1 || true
  done
fi

# A current FFmpeg (9.x, static, from PyPI's imageio-ffmpeg wheel, pinned) for the tests
# that read and publish Enhanced RTMP (H.265 / Opus in FLV), which Debian 12's FFmpeg 5.1
# cannot. It is a client we did not write, beside Debian's; the server never uses it.
TOOLS="${TRIBUTARY_TOOLS:-/var/tmp/tributary-tools}"
if [ ! -x "$TOOLS/ffmpeg" ]; then
  echo "setup: installing FFmpeg 9 (imageio-ffmpeg 0.8.1) into $TOOLS"
  python3 -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q "imageio-ffmpeg==0.8.1"
  exe=$("$TOOLS/venv/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')
  ln -sf "$exe" "$TOOLS/ffmpeg"
fi

# aiortc (an independent WebRTC stack, pinned) for the WHIP/WHEP tests, beside FFmpeg 9.
if ! "$TOOLS/venv/bin/python" -c "import aiortc, numpy" >/dev/null 2>&1; then
  echo "setup: installing aiortc 1.16.0 into $TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q "aiortc==1.16.0" "numpy==2.4.6"
fi
# Playwright for Python drives Debian's chromium (its own browser download is never run).
if ! "$TOOLS/venv/bin/python" -c "import playwright" >/dev/null 2>&1; then
  echo "setup: installing playwright 1.65.2 into $TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q "playwright==1.65.2"
fi

# The browser players from npm (hls.js, mpegts.js; pinned by crates/tributary/console/
# package-lock.json): the console embeds mpegts.js for its previews, the browser tests
# load both. Installed again only when the lock file changes.
CONSOLE_DIR="$(cd "$(dirname "$0")/.." && pwd)/crates/tributary/console"
if ! cmp -s "$CONSOLE_DIR/package-lock.json" "$CONSOLE_DIR/node_modules/.package-lock.json.installed" \
   || [ ! -f "$CONSOLE_DIR/node_modules/mpegts.js/dist/mpegts.js" ]; then
  echo "setup: installing hls.js and mpegts.js (npm ci) into $CONSOLE_DIR/node_modules"
  (cd "$CONSOLE_DIR" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  cp "$CONSOLE_DIR/package-lock.json" "$CONSOLE_DIR/node_modules/.package-lock.json.installed"
fi
