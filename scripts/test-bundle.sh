#!/usr/bin/env bash
# Proves a release bundle is complete: builds it, unpacks it into a scratch root and runs the
# packaged binary from another working directory (models and runtime must be found relative to
# the binary, nothing from the source tree). aarch64 runs under qemu (scripts/qemu/run-aarch64.sh).
#
#   scripts/test-bundle.sh [TARGET]      default aarch64-unknown-linux-gnu
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-aarch64-unknown-linux-gnu}
tarball=$(scripts/bundle.sh "$target")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
tar -C "$root" -xzf "$tarball"
dir=$(echo "$root"/maskgate-*)
run=()
[ "$target" = aarch64-unknown-linux-gnu ] && run=("$PWD/scripts/qemu/run-aarch64.sh")
out=$(cd / && env -u MASKGATE_MODELS -u LD_LIBRARY_PATH "${run[@]}" "$dir/maskgate" image --json --threads 1 "$dir/samples/astronaut.jpg")
echo "$out"
faces=$(echo "$out" | grep -o '"mask":' | wc -l)
if [ "$faces" -ne 1 ]; then
  echo "test-bundle: FAILED: expected 1 face from the packaged binary, got $faces" >&2
  exit 1
fi
echo "test-bundle: $(basename "$tarball") ($(du -h "$tarball" | cut -f1)) runs from a scratch root: 1 passed, 0 failed"
