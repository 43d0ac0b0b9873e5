#!/usr/bin/env bash
# The project's test command (README, .ci/run): formatting, lints, every test on the host with
# the shipped models, then — when the aarch64 toolchain is set up (scripts/setup.sh --arm) — the
# whole suite again cross-compiled for aarch64 and run under qemu-user as a Cortex-A72 (Pi 4),
# with 1 inference thread (LiteRT hangs with 2 under qemu-user), one test per process so the
# slow emulated ones overlap (scripts/qemu/test-aarch64.sh); the Debian package is installed,
# upgraded, removed and purged with the real dpkg (amd64, as root) and the arm64 one linted;
# the door also runs against real kernel drivers in a VM (scripts/qemu/test-drivers.sh).
# Tests that need ../shared skip with a message when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release
echo "== real kernel drivers (Debian's kernel in qemu-system: vivid, i2c-stub) =="
scripts/qemu/test-drivers.sh
echo "== Debian package (amd64: dpkg install / upgrade / remove / purge) =="
scripts/test-deb.sh x86_64-unknown-linux-gnu
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
  && command -v aarch64-linux-gnu-gcc >/dev/null \
  && command -v qemu-aarch64-static >/dev/null \
  && [ -f .tflite/aarch64-unknown-linux-gnu/libLiteRt.so ]; then
  echo "== aarch64 (emulated, qemu-aarch64 -cpu cortex-a72, 1 thread) =="
  scripts/qemu/test-aarch64.sh
  echo "== real GPIO driver (aarch64 build on qemu's virt board: PL061 through gpio-cdev) =="
  scripts/qemu/test-drivers.sh --arch arm64
  echo "== aarch64 release bundle =="
  scripts/test-bundle.sh aarch64-unknown-linux-gnu
  echo "== Debian package (arm64: built and linted) =="
  scripts/test-deb.sh aarch64-unknown-linux-gnu
else
  echo "SKIPPED: aarch64 suite (run scripts/setup.sh --arm to set up the cross toolchain and qemu)"
fi
