#!/usr/bin/env bash
# Builds the Debian package for one target with dpkg-deb (no packaging tool beyond dpkg):
#   dist/maskgate_<version>_<arch>.deb      arch: arm64 (aarch64-unknown-linux-gnu, default) or amd64
#     /usr/lib/maskgate/maskgate, the TFLite runtime beside it (rpath $ORIGIN),
#     /usr/lib/maskgate/models/quantized/ (found beside the binary), /usr/bin/maskgate -> it,
#     /lib/systemd/system/maskgate.service, /etc/maskgate/maskgate.toml (a conffile: an edited
#     one survives upgrades), /usr/share/maskgate/boards/ (wiring in comments), docs.
#   Maintainer scripts: deploy/debian/{postinst,prerm,postrm} (service user in gpio / i2c /
#   video, enable on install, restart on upgrade, purge removes the user; no systemd: skipped).
#
#   scripts/deb.sh [TARGET]          DEB_VERSION=... overrides the version (upgrade tests)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-aarch64-unknown-linux-gnu}
case "$target" in
  x86_64-unknown-linux-gnu) arch=amd64; lib=.tflite/$target/libtensorflowlite_c.so ;;
  aarch64-unknown-linux-gnu) arch=arm64; lib=.tflite/$target/libLiteRt.so ;;
  *) echo "deb: unknown target $target" >&2; exit 2 ;;
esac
version=${DEB_VERSION:-$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n1)-1}
scripts/provision-tflite.sh "$target" >/dev/null
if [ "$target" = "$(rustc -vV | sed -n 's/^host: //p')" ]; then
  cargo build --release --locked >&2   # the host build the tests already made
  bin=target/release/maskgate
else
  cargo build --release --locked --target "$target" >&2
  bin=target/$target/release/maskgate
fi
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
r=$stage/root
install -d "$r/DEBIAN" "$r/usr/lib/maskgate/models/quantized" "$r/usr/bin" "$r/lib/systemd/system" \
  "$r/etc/maskgate" "$r/usr/share/maskgate/boards" "$r/usr/share/doc/maskgate"
install -m 0755 "$bin" "$r/usr/lib/maskgate/maskgate"
strip_tool=strip
[ "$arch" = arm64 ] && strip_tool=aarch64-linux-gnu-strip
"$strip_tool" --strip-unneeded "$r/usr/lib/maskgate/maskgate"
install -m 0644 "$lib" "$r/usr/lib/maskgate/"
install -m 0644 models/quantized/*.tflite "$r/usr/lib/maskgate/models/quantized/"
ln -s ../lib/maskgate/maskgate "$r/usr/bin/maskgate"
sed -e 's#/opt/maskgate/maskgate#/usr/bin/maskgate#' \
    -e 's#file:///opt/maskgate/README.md#file:///usr/share/doc/maskgate/README.md.gz#' \
    -e 's#Installed by install.sh to /etc/systemd/system/maskgate.service#Installed by the maskgate package#' \
    deploy/maskgate.service > "$r/lib/systemd/system/maskgate.service"
chmod 0644 "$r/lib/systemd/system/maskgate.service"
install -m 0644 deploy/maskgate.toml "$r/etc/maskgate/maskgate.toml"
install -m 0644 boards/*.toml "$r/usr/share/maskgate/boards/"
gzip -9n < README.md > "$r/usr/share/doc/maskgate/README.md.gz"
gzip -9n < models/README.md > "$r/usr/share/doc/maskgate/models.md.gz"
cat > "$r/usr/share/doc/maskgate/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: maskgate

Files: *
Copyright: 2026 maskgate authors
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy of this
 software and associated documentation files (the "Software"), to deal in the Software
 without restriction, including without limitation the rights to use, copy, modify, merge,
 publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
 to whom the Software is furnished to do so, subject to the following conditions:
 .
 The above copyright notice and this permission notice shall be included in all copies or
 substantial portions of the Software.
 .
 THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED.
 The shipped models are derived from RetinaFace mobilenet0.25 (MIT) and trained on the
 datasets named in /usr/share/doc/maskgate/models.md.gz.
COPY
printf 'maskgate (%s) stable; urgency=medium\n\n  * Release %s.\n\n -- maskgate kiosk team <kiosk@maskgate.invalid>  %s\n' \
  "$version" "$version" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}")" \
  | gzip -9n > "$r/usr/share/doc/maskgate/changelog.Debian.gz"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$r/DEBIAN/"
install -d "$r/usr/share/lintian/overrides"
{ grep '^#' deploy/debian/lintian-overrides; grep -F "[usr/lib/maskgate/$(basename "$lib")]" deploy/debian/lintian-overrides; } \
  > "$r/usr/share/lintian/overrides/maskgate"
chmod 0644 "$r/usr/share/lintian/overrides/maskgate"
install -d "$r/usr/share/man/man1"
gzip -9n < deploy/debian/maskgate.1 > "$r/usr/share/man/man1/maskgate.1.gz"
echo /etc/maskgate/maskgate.toml > "$r/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$r" | cut -f1)
cat > "$r/DEBIAN/control" <<CTRL
Package: maskgate
Version: $version
Architecture: $arch
Maintainer: maskgate kiosk team <kiosk@maskgate.invalid>
Installed-Size: $size
Depends: libc6 (>= 2.31), libstdc++6, libgcc-s1, passwd
Recommends: ffmpeg
Section: misc
Priority: optional
Homepage: https://example.invalid/maskgate
Description: door mask check kiosk for Raspberry Pi and Jetson
 One binary watches a V4L2 camera, finds faces with an int8 RetinaFace,
 asks an int8 ResNet "mask or no mask" and tells the person with LEDs, a
 buzzer and an SSD1306 OLED. It also annotates images and videos, serves
 detections over HTTP and publishes verdicts over MQTT (Home Assistant
 discovery).
CTRL
mkdir -p dist
out=dist/maskgate_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$r" "$out" >/dev/null
echo "$out"
