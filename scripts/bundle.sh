#!/usr/bin/env bash
# Builds a release bundle for one target:
#   dist/maskgate-<version>-<target>.tar.gz
#     maskgate-<version>-<target>/maskgate            the binary (rpath $ORIGIN)
#     maskgate-<version>-<target>/<runtime>.so         libtensorflowlite_c.so (x86_64) / libLiteRt.so (aarch64)
#     maskgate-<version>-<target>/models/quantized/    the shipped models (+ models/README.md)
#     maskgate-<version>-<target>/boards/*.toml           board profiles (wiring in comments)
#     maskgate-<version>-<target>/deploy/                 systemd unit, example site config
#     maskgate-<version>-<target>/install.sh              sudo ./install.sh [BOARD] on the board
#     maskgate-<version>-<target>/README.md, samples/astronaut.jpg
# The binary finds the runtime beside itself and the models in models/quantized beside itself.
#
#   scripts/bundle.sh [TARGET]      default aarch64-unknown-linux-gnu
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-aarch64-unknown-linux-gnu}
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)
scripts/provision-tflite.sh "$target" >/dev/null
cargo build --release --locked --target "$target" >&2
case "$target" in
  x86_64-unknown-linux-gnu) lib=.tflite/$target/libtensorflowlite_c.so ;;
  aarch64-unknown-linux-gnu) lib=.tflite/$target/libLiteRt.so ;;
esac
name=maskgate-$version-$target
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
d=$stage/$name
mkdir -p "$d/models/quantized" "$d/samples" "$d/boards" "$d/deploy"
cp "target/$target/release/maskgate" "$d/"
cp "$lib" "$d/"
cp models/quantized/*.tflite "$d/models/quantized/"
cp models/README.md "$d/models/"
cp README.md "$d/"
cp samples/astronaut.jpg "$d/samples/"
cp boards/*.toml "$d/boards/"
cp deploy/maskgate.service deploy/maskgate.toml "$d/deploy/"
cp deploy/install.sh "$d/"
mkdir -p dist
tar -C "$stage" -czf "dist/$name.tar.gz" "$name"
echo "dist/$name.tar.gz"
