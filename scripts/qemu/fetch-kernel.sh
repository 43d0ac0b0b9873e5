#!/usr/bin/env bash
# Fetches the Debian kernel package that linux-image-amd64 currently depends on and unpacks it
# (dpkg-deb -x, nothing installed) into .vm/kernel/, for scripts/qemu/test-drivers.sh. Safe to
# run again: an unpacked kernel of the right version is kept. Prints the kernel directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
  echo "fetch-kernel: apt knows no linux-image-amd64 (run apt-get update)" >&2
  exit 1
fi
dir=.vm/kernel/$pkg
if ! ls "$dir"/boot/vmlinuz-* >/dev/null 2>&1; then
  mkdir -p .vm/deb .vm/kernel
  rm -rf "$dir.tmp"
  (cd .vm/deb && apt-get download -q "$pkg" >/dev/null 2>&1) || {
    echo "fetch-kernel: cannot download $pkg" >&2
    exit 1
  }
  dpkg-deb -x .vm/deb/"$pkg"_*.deb "$dir.tmp"
  rm -f .vm/deb/"$pkg"_*.deb
  mv "$dir.tmp" "$dir"
fi
echo "$dir"
