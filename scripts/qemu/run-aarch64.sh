#!/usr/bin/env bash
# cargo runner for aarch64-unknown-linux-gnu on an x86_64 host (see .cargo/config.toml):
# runs the binary under qemu-user as a Cortex-A72 (Raspberry Pi 4).
#  * qemu-user shows the host's /proc/cpuinfo, which the TFLite runtime's CPU probe misreads:
#    inside a private mount namespace (needs root) a Pi 4 cpuinfo is bind-mounted over it.
#  * LiteRT hangs with 2 threads under qemu-user: tests read MASKGATE_TEST_THREADS=1.
#  * Never point qemu at /usr/aarch64-linux-gnu (-L): thread spawn hangs; the multiarch
#    libc6:arm64 in /lib/aarch64-linux-gnu is found through the normal paths.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
qemu=$(command -v qemu-aarch64-static || command -v qemu-aarch64)
export MASKGATE_TEST_THREADS=${MASKGATE_TEST_THREADS:-1}
export MASKGATE_TEST_RUNNER="$qemu -cpu cortex-a72"
if [ "$(id -u)" -eq 0 ] && [ -z "${MASKGATE_IN_NS:-}" ] && command -v unshare >/dev/null; then
  export MASKGATE_IN_NS=1
  exec unshare -m --propagation private bash -c \
    'mount --bind "$1" /proc/cpuinfo && shift && exec "$@"' _ "$here/pi4-cpuinfo" "$qemu" -cpu cortex-a72 "$@"
fi
echo "run-aarch64: not root: the host /proc/cpuinfo stays visible to the TFLite CPU probe" >&2
exec "$qemu" -cpu cortex-a72 "$@"
