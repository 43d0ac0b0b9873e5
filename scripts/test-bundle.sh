#!/usr/bin/env bash
# Proves a release bundle is complete: builds it, unpacks it into a scratch root, stages
# install.sh into a second scratch root (MASKGATE_INSTALL_ROOT) and runs the installed binary
# from another working directory (models and runtime must be found relative to the binary,
# nothing from the source tree): an image, and the kiosk loop in simulation with the board
# profile and site config the installer wrote. aarch64 runs under qemu.
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
inst=$root/installed
MASKGATE_INSTALL_ROOT=$inst sh "$dir/install.sh" rpi4 >&2
for f in opt/maskgate/maskgate opt/maskgate/boards/rpi4.toml etc/systemd/system/maskgate.service \
         etc/maskgate/maskgate.toml etc/default/maskgate; do
  [ -e "$inst/$f" ] || { echo "test-bundle: FAILED: install.sh did not install /$f" >&2; exit 1; }
done
bin=$inst/opt/maskgate/maskgate
out=$(cd / && env -u MASKGATE_MODELS -u LD_LIBRARY_PATH "${run[@]}" "$bin" image --json --threads 1 "$dir/samples/astronaut.jpg")
echo "$out"
faces=$(echo "$out" | grep -o '"mask":' | wc -l)
if [ "$faces" -ne 1 ]; then
  echo "test-bundle: FAILED: expected 1 face from the packaged binary, got $faces" >&2
  exit 1
fi
# the service's environment, as systemd would pass it (paths moved under the staging root),
# on a five-frame "person at the door" sequence
seq=$root/seq
mkdir -p "$seq"
for i in 0 1 2 3 4; do ln -s "$dir/samples/astronaut.jpg" "$seq/$i.jpg"; done
events=$(cd / && env -u MASKGATE_MODELS -u LD_LIBRARY_PATH MASKGATE_BOARD=rpi4 \
  MASKGATE_CONFIG="$inst/etc/maskgate/maskgate.toml" \
  "${run[@]}" "$bin" run --simulate --threads 1 --source "$seq" 2>/dev/null)
echo "$events"
echo "$events" | grep -q '"event":"decision","t_ms":133,"decision":"no_mask"' \
  || { echo "test-bundle: FAILED: the installed kiosk gave no no_mask verdict on the third frame" >&2; exit 1; }
echo "test-bundle: $(basename "$tarball") ($(du -h "$tarball" | cut -f1)) installs into a scratch root and runs there: 2 passed, 0 failed"
