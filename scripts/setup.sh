#!/usr/bin/env bash
# One-time set-up of a fresh Debian/Ubuntu machine for building and testing maskgate:
# build dependencies (apt), the pinned Rust toolchain (rustup), and the TFLite C runtime
# (scripts/provision-tflite.sh, from PyPI / crates.io). Safe to run again.
#
#   scripts/setup.sh          host (x86_64) only
#   scripts/setup.sh --arm    also the aarch64 cross toolchain, arm64 runtime libraries and
#                             qemu-user, so scripts/test.sh runs the suite emulated as well
set -euo pipefail
cd "$(dirname "$0")/.."
arm=0
[ "${1:-}" = "--arm" ] && arm=1
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
pkgs=(libclang-dev libssl-dev pkg-config curl)
# tests/mqtt.rs starts a real broker of its own
pkgs+=(mosquitto)
# scripts/test-deb.sh checks the Debian package; tests/mqtt.rs makes its TLS certificates
pkgs+=(lintian openssl)
# tests/web.rs renders the status page in a real headless browser
pkgs+=(chromium)
# tests/stream.rs runs a real RTSP server of its own (its packaged service is disabled below)
pkgs+=(rtsp-server-perl)
# scripts/qemu/test-drivers.sh boots Debian's kernel with real drivers (vivid, i2c-stub) in a VM
pkgs+=(qemu-system-x86 busybox-static v4l-utils cpio)
# the video mode and the video tests run the system ffmpeg / ffprobe (installed below)
command -v python3 >/dev/null || pkgs+=(python3)
python3 -m pip --version >/dev/null 2>&1 || pkgs+=(python3-pip)
if [ $arm -eq 1 ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  pkgs+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross libc6:arm64 libstdc++6:arm64 qemu-user-static)
  # the aarch64 driver VM (qemu's virt board with its PL061 GPIO)
  pkgs+=(qemu-system-arm)
fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  [ ${#missing[@]} -gt 0 ] || $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null
fi
if ! command -v cargo >/dev/null; then
  echo "setup: installing Rust with rustup" >&2
  curl -fsSL https://sh.rustup.rs | sh -s -- -y --profile minimal
  . "$HOME/.cargo/env"
fi
channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain list | grep -q "^$channel" \
  || rustup toolchain install "$channel" --profile minimal -c rustfmt -c clippy
targets=(x86_64-unknown-linux-gnu)
if [ $arm -eq 1 ]; then
  rustup target add aarch64-unknown-linux-gnu >/dev/null
  targets+=(aarch64-unknown-linux-gnu)
fi
scripts/provision-tflite.sh "${targets[@]}"
# the package enables a loopback RTSP service on port 554; the tests need none of it
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now rtsp-server-perl >/dev/null 2>&1 || true
fi
# the kernels the driver VMs boot: Debian's own packages, unpacked (never installed) in .vm/
# (not fatal: without them the driver VM tests skip with a message)
for a in amd64 $([ $arm -eq 1 ] && echo arm64); do
  scripts/qemu/fetch-vm.sh $a >/dev/null || echo "setup: no $a kernel package; the driver VM test will skip" >&2
done
