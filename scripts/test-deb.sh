#!/usr/bin/env bash
# The Debian package as an installer meets it, with the real dpkg on this machine (amd64):
# lintian (no errors), install (binary, runtime and models found from /usr/bin, the service
# user in its groups, the unit and the conffile in place), an upgrade that keeps an edited
# conffile and replaces the binary, remove (config and user kept), purge (both gone).
# No systemd here: the maintainer scripts must cope. Needs root and a machine where maskgate
# is not installed as a package; skips with a message otherwise. With TARGET=aarch64-... it
# only builds the arm64 package and checks it with lintian and its file list.
#
#   scripts/test-deb.sh [TARGET]      default x86_64-unknown-linux-gnu
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
target=${1:-x86_64-unknown-linux-gnu}
fail() { echo "test-deb: FAILED: $*" >&2; exit 1; }
lint() {
  if command -v lintian >/dev/null; then
    out=$(lintian --tag-display-limit 0 "$1" 2>&1 | grep -v 'root privileges' || true)
    echo "$out" >&2
    if echo "$out" | grep -q '^E:'; then fail "lintian errors in $1"; fi
  else
    echo "test-deb: lintian not installed (scripts/setup.sh installs it): not linted" >&2
  fi
}
deb=$(scripts/deb.sh "$target")
lint "$deb"
files=$(dpkg-deb -c "$deb")
for f in ./usr/lib/maskgate/maskgate ./usr/bin/maskgate ./lib/systemd/system/maskgate.service \
         ./etc/maskgate/maskgate.toml ./usr/lib/maskgate/models/quantized/mask_resnet_int8.tflite; do
  grep -q " $f" <<< "$files" || fail "$deb lacks $f"
done
[ "$(dpkg-deb -I "$deb" conffiles)" = /etc/maskgate/maskgate.toml ] || fail "the site config is not a conffile"
if [ "$target" != x86_64-unknown-linux-gnu ]; then
  echo "test-deb: $deb built and linted (not installable on this machine)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIPPED: dpkg install / upgrade / remove test (needs root; CI runs it)"; exit 0
fi
if dpkg -s maskgate >/dev/null 2>&1; then
  echo "SKIPPED: dpkg install test: maskgate is installed as a package on this machine"; exit 0
fi
cleanup() { dpkg -P maskgate >/dev/null 2>&1 || true; }
trap cleanup EXIT
dpkg -i "$deb" >&2
out=$(cd / && env -u MASKGATE_MODELS -u LD_LIBRARY_PATH maskgate image --json --threads 1 "$repo/samples/astronaut.jpg")
[ "$(echo "$out" | grep -o '"mask":' | wc -l)" -eq 1 ] || fail "the installed binary did not find the one face: $out"
id maskgate >/dev/null || fail "no user maskgate"
for g in gpio i2c video; do id -nG maskgate | tr ' ' '\n' | grep -qx "$g" || fail "maskgate is not in group $g"; done
[ -f /etc/maskgate/maskgate.toml ] && [ -f /etc/default/maskgate ] || fail "config files missing"
[ -L /etc/systemd/system/multi-user.target.wants/maskgate.service ] || fail "the unit is not enabled"
(cd / && env -u MASKGATE_MODELS maskgate run --simulate --board rpi4 --config /etc/maskgate/maskgate.toml \
   --threads 1 --source "$repo/samples/astronaut.jpg" >/dev/null 2>&1) || fail "the installed kiosk does not run"
# upgrade: the site's edit survives, the new version is installed
echo '# edited on site' >> /etc/maskgate/maskgate.toml
old=$(dpkg-query -W -f='${Version}' maskgate)
next=$(DEB_VERSION="${old%-*}-2" scripts/deb.sh "$target")
dpkg -i --force-confold "$next" >&2
[ "$(dpkg-query -W -f='${Version}' maskgate)" = "${old%-*}-2" ] || fail "upgrade did not install the new version"
grep -q '^# edited on site' /etc/maskgate/maskgate.toml || fail "the upgrade lost the edited conffile"
# remove keeps the site's config and the user; purge removes them
dpkg -r maskgate >&2
[ ! -e /usr/bin/maskgate ] || fail "remove left /usr/bin/maskgate"
[ -f /etc/maskgate/maskgate.toml ] && id maskgate >/dev/null || fail "remove took the config or the user"
dpkg -P maskgate >&2
[ ! -e /etc/maskgate/maskgate.toml ] && [ ! -e /etc/default/maskgate ] || fail "purge left the config"
if id maskgate >/dev/null 2>&1; then fail "purge left the user"; fi
rm -f "$next"
trap - EXIT
echo "test-deb: $deb: installs, upgrades (conffile kept), removes and purges cleanly"
