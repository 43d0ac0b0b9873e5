#!/bin/sh
# Installs maskgate from an unpacked release bundle as a systemd service. Run as root on
# the board, from the bundle folder:
#
#   sudo ./install.sh [BOARD]        BOARD: rpi4 | rpi5 | jetson-orin-nano | jetson-nano
#                                    (default: read from /proc/device-tree/model)
#   sudo ./install.sh --uninstall
#
# It creates the service user `maskgate` in the gpio, i2c and video groups (creating groups
# and udev rules where the OS has none), installs to /opt/maskgate, writes
# /etc/default/maskgate and an example /etc/maskgate/maskgate.toml (kept if present), makes
# sure I2C is enabled, installs and starts maskgate.service.
#
# MASKGATE_INSTALL_ROOT=/some/dir stages the files under that root without touching users,
# groups, udev or systemd (used by the bundle test; handy to inspect what goes where).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=${MASKGATE_INSTALL_ROOT:-}
prefix=$root/opt/maskgate
live=true
[ -n "$root" ] && live=false

say() { echo "install: $*"; }
die() { echo "install: error: $*" >&2; exit 1; }

if [ "${1:-}" = "--uninstall" ]; then
  $live || die "--uninstall needs a live system"
  systemctl disable --now maskgate.service 2>/dev/null || true
  rm -f /etc/systemd/system/maskgate.service /etc/udev/rules.d/60-maskgate.rules
  systemctl daemon-reload
  rm -rf /opt/maskgate
  say "removed /opt/maskgate and the service; kept /etc/maskgate, /etc/default/maskgate and the user"
  exit 0
fi

if $live && [ "$(id -u)" -ne 0 ]; then
  die "run as root: sudo $0 $*"
fi

board=${1:-}
if [ -z "$board" ]; then
  model=
  [ -r /proc/device-tree/model ] && model=$(tr -d '\0' < /proc/device-tree/model)
  case "$model" in
    *"Raspberry Pi 5"*) board=rpi5 ;;
    *"Raspberry Pi 4"*|*"Raspberry Pi Compute Module 4"*) board=rpi4 ;;
    *"Orin Nano"*|*"Orin NX"*) board=jetson-orin-nano ;;
    *"Jetson Nano"*|*"Jetson-Nano"*) board=jetson-nano ;;
    *) die "cannot tell the board from '${model:-no /proc/device-tree/model}'; pass one: rpi4 | rpi5 | jetson-orin-nano | jetson-nano (or a path to a board TOML)" ;;
  esac
  say "board: $board ($model)"
fi

if $live; then
  [ "$(uname -m)" = aarch64 ] || die "this bundle is for 64-bit ARM (aarch64); this system is $(uname -m). 32-bit Raspberry Pi OS is not supported: install the 64-bit OS"
  glibc=$(ldd --version 2>/dev/null | head -n1 | grep -o '[0-9]*\.[0-9]*$' || echo 0)
  if [ "$(printf '%s\n2.31\n' "$glibc" | sort -V | head -n1)" != 2.31 ]; then
    die "glibc $glibc is too old (needs >= 2.31: Raspberry Pi OS Bullseye/Bookworm, Ubuntu 20.04+, JetPack 5/6); JetPack 4 (Ubuntu 18.04) cannot run this bundle"
  fi
fi

# files
install -d "$prefix" "$prefix/models/quantized" "$prefix/boards" "$root/etc/maskgate" "$root/etc/default" "$root/etc/systemd/system"
install -m 0755 "$here/maskgate" "$prefix/maskgate"
for lib in "$here"/*.so; do install -m 0644 "$lib" "$prefix/"; done
install -m 0644 "$here"/models/quantized/*.tflite "$prefix/models/quantized/"
install -m 0644 "$here"/models/README.md "$here/README.md" "$prefix/" 2>/dev/null || true
install -m 0644 "$here"/boards/*.toml "$prefix/boards/"
install -m 0644 "$here/deploy/maskgate.service" "$root/etc/systemd/system/maskgate.service"
if [ -e "$root/etc/maskgate/maskgate.toml" ]; then
  say "kept existing /etc/maskgate/maskgate.toml"
else
  install -m 0644 "$here/deploy/maskgate.toml" "$root/etc/maskgate/maskgate.toml"
fi
if [ -e "$root/etc/default/maskgate" ]; then
  say "kept existing /etc/default/maskgate"
else
  printf 'MASKGATE_BOARD=%s\nMASKGATE_CONFIG=/etc/maskgate/maskgate.toml\n' "$board" > "$root/etc/default/maskgate"
fi
say "installed to $prefix"

if ! $live; then
  say "staged under $root (no user, groups, udev or systemd changes)"
  exit 0
fi

# user and groups
for g in gpio i2c video; do
  getent group "$g" >/dev/null || { groupadd --system "$g"; say "created group $g"; }
done
if ! id maskgate >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin maskgate
  say "created user maskgate"
fi
usermod -aG gpio,i2c,video maskgate

# device permissions where the OS has no rules (Raspberry Pi OS has them; Jetson / Ubuntu may not)
case "$board" in
  rpi*) ;;
  *)
    cat > /etc/udev/rules.d/60-maskgate.rules <<'RULES'
# maskgate: GPIO character devices to group gpio, I2C buses to group i2c
SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"
SUBSYSTEM=="i2c-dev", KERNEL=="i2c-[0-9]*", GROUP="i2c", MODE="0660"
RULES
    udevadm control --reload-rules && udevadm trigger || true
    say "udev rules: /etc/udev/rules.d/60-maskgate.rules"
    ;;
esac

# I2C for the display
modprobe i2c-dev 2>/dev/null || true
echo i2c-dev > /etc/modules-load.d/maskgate.conf
case "$board" in
  rpi*)
    if [ ! -e /dev/i2c-1 ]; then
      if command -v raspi-config >/dev/null; then
        raspi-config nonint do_i2c 0
        say "enabled I2C with raspi-config; if /dev/i2c-1 is still missing, reboot"
      else
        say "I2C is off: add dtparam=i2c_arm=on to /boot/firmware/config.txt and reboot"
      fi
    fi
    ;;
esac

systemctl daemon-reload
systemctl enable maskgate.service
# restart, not start: on an upgrade the running old binary must make way for the new one
systemctl restart maskgate.service
say "maskgate.service enabled and (re)started; follow it with: journalctl -u maskgate -f"
