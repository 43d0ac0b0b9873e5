#!/usr/bin/env bash
# Fetches what the driver VMs of scripts/qemu/test-drivers.sh boot, from Debian's own archive,
# unpacked with dpkg-deb -x (nothing is installed) into .vm/ARCH/:
#   the kernel package linux-image-ARCH currently depends on   (amd64 and arm64)
#   busybox-static for arm64 (amd64 uses the host's /bin/busybox) (arm64)
# Safe to run again: what is unpacked is kept. Prints the kernel directory.
#
#   scripts/qemu/fetch-vm.sh [amd64|arm64]
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${1:-amd64}
q=""
[ "$arch" = amd64 ] || q=":$arch"
fetch() { # PACKAGE DIR
  [ -d "$2" ] && return 0
  mkdir -p .vm/deb "$(dirname "$2")"
  rm -rf "$2.tmp" .vm/deb/*.deb
  (cd .vm/deb && apt-get download -q "$1$q" >/dev/null 2>&1) || {
    echo "fetch-vm: cannot download $1$q" >&2
    return 1
  }
  dpkg-deb -x .vm/deb/*.deb "$2.tmp"
  rm -f .vm/deb/*.deb
  mv "$2.tmp" "$2"
}
pkg=$(apt-cache depends "linux-image-$arch$q" 2>/dev/null \
  | sed -n "s/^ *Depends: \(linux-image-[0-9].*-$arch\)\(:$arch\)\?$/\1/p" | head -1)
if [ -z "$pkg" ]; then
  echo "fetch-vm: apt knows no linux-image-$arch$q (apt-get update; arm64: dpkg --add-architecture arm64)" >&2
  exit 1
fi
fetch "$pkg" ".vm/$arch/$pkg"
[ "$arch" = amd64 ] || fetch busybox-static ".vm/$arch/busybox"
echo ".vm/$arch/$pkg"
