#!/usr/bin/env bash
# maskgate against real kernel drivers: boots Debian's own kernel (scripts/qemu/fetch-vm.sh) in
# a throw-away qemu-system VM (TCG: this machine's /dev/kvm does not boot a stock kernel) and
# runs the release binary as the door there; the VM's /init says what is checked.
#   amd64 (default): vivid as the camera, i2c-stub as the display bus (scripts/qemu/vm-drivers.sh)
#   arm64: the aarch64 build on qemu's `virt` board, its PL061 GPIO lines as the LEDs and
#          buzzer through gpio-cdev (scripts/qemu/vm-gpio.sh)
# Under a minute each. Skips with a message when qemu, busybox-static, v4l-utils, ffmpeg or the
# kernel package cannot be had (scripts/setup.sh installs them; arm64 needs --arm).
#
#   scripts/qemu/test-drivers.sh [--arch amd64|arm64]   exit 0: every check passed (or skipped)
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=amd64
[ "${1:-}" = --arch ] && arch=${2:?--arch amd64 or arm64}
skip() {
  echo "SKIPPED: driver VM ($arch): $*"
  exit 0
}
command -v cpio >/dev/null || skip "cpio not installed"
if [ $arch = amd64 ]; then
  command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt install qemu-system-x86)"
  command -v v4l2-ctl >/dev/null || skip "v4l2-ctl not installed (apt install v4l-utils)"
  command -v ffmpeg >/dev/null || skip "ffmpeg not installed"
  { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || skip "no static busybox (apt install busybox-static)"
else
  command -v qemu-system-aarch64 >/dev/null || skip "qemu-system-aarch64 not installed (apt install qemu-system-arm)"
  command -v aarch64-linux-gnu-strip >/dev/null || skip "no aarch64 toolchain (scripts/setup.sh --arm)"
  [ -f .tflite/aarch64-unknown-linux-gnu/libLiteRt.so ] || skip "no aarch64 TFLite runtime (scripts/setup.sh --arm)"
fi
kdir=$(scripts/qemu/fetch-vm.sh $arch 2>/dev/null) || skip "the Debian kernel package cannot be fetched (scripts/qemu/fetch-vm.sh $arch)"
kver=$(basename "$kdir"/boot/vmlinuz-* | sed 's/^vmlinuz-//')
kmods=$kdir/lib/modules/$kver/kernel

work=target/vm-$arch
root=$work/root
rm -rf $root
mkdir -p $root/{bin,dev,etc,proc,sys,tmp,mods,opt/mg/models/quantized,usr/bin}
for a in sh mount insmod rmmod ls cat echo sleep poweroff grep head tail sed kill wc cut tr \
  su chgrp chmod printf; do
  ln -s busybox $root/bin/$a
done
cp models/quantized/retinaface_mnet025_320x240_int8.tflite models/quantized/mask_resnet_int8.tflite \
  $root/opt/mg/models/quantized/
cp samples/astronaut.jpg $root/opt/face.jpg

if [ $arch = amd64 ]; then
  cargo build --release --bin maskgate
  rt=target/release/libtensorflowlite_c.so
  [ -f $rt ] || { echo "test-drivers: $rt missing (scripts/provision-tflite.sh)" >&2; exit 1; }
  cp /bin/busybox $root/bin/busybox
  for m in mc rc-core cec videodev v4l2-dv-timings v4l2-tpg videobuf2-common videobuf2-memops \
    videobuf2-v4l2 videobuf2-vmalloc videobuf2-dma-contig vivid i2c-dev i2c-stub; do
    f=$(find "$kmods" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
    [ -n "$f" ] || { echo "test-drivers: module $m not in $kdir" >&2; exit 1; }
    case $f in
      *.xz) xz -dc "$f" >$root/mods/$m.ko ;;
      *) cp "$f" $root/mods/$m.ko ;;
    esac
  done
  # stripped copies: the initramfs is unpacked into the VM's memory
  strip -o $root/opt/mg/maskgate target/release/maskgate
  strip --strip-unneeded -o $root/opt/mg/libtensorflowlite_c.so $rt
  cp "$(command -v v4l2-ctl)" $root/usr/bin/
  for lib in $( (ldd "$(command -v v4l2-ctl)"; LD_LIBRARY_PATH=$root/opt/mg ldd $root/opt/mg/maskgate) \
    | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^\//) print $i }' | sort -u); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  # the face the camera sees: the astronaut (no mask), filling vivid's 1280x720 HDMI frame
  ffmpeg -v error -y -i samples/astronaut.jpg -vf "scale=-1:720,pad=1280:720:(ow-iw)/2:0" \
    -pix_fmt yuyv422 -f rawvideo $root/opt/face.yuyv
  cat >$root/opt/site.toml <<'EOF'
[camera]
device = "/dev/video0"
width = 640
height = 480
fps = 15
format = "mjpeg"
[model]
input_size = "320x240"
threads = 2
models_dir = "/opt/mg/models/quantized"
[gpio]
backend = "none"
[display]
enabled = true
i2c_bus = 0
[service]
watchdog = false
EOF
  cp scripts/qemu/vm-drivers.sh $root/init
  qemu=(qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1536)
  console=ttyS0
  want="vivid v4l2-negotiation i2c-smbus-only v4l2-verdict v4l2-disconnect v4l2-rmmod v4l2-insmod v4l2-verdict-after-reload sigterm i2c-logged-once"
  what="vivid + i2c-stub"
else
  cargo build --release --target aarch64-unknown-linux-gnu --bin maskgate
  cp "$(dirname "$kdir")/busybox/bin/busybox" $root/bin/busybox
  aarch64-linux-gnu-strip -o $root/opt/mg/maskgate target/aarch64-unknown-linux-gnu/release/maskgate
  aarch64-linux-gnu-strip --strip-unneeded -o $root/opt/mg/libLiteRt.so \
    .tflite/aarch64-unknown-linux-gnu/libLiteRt.so
  # the arm64 C and C++ runtime the binary and LiteRT need (libc6:arm64, libstdc++6:arm64)
  mkdir -p $root/lib/aarch64-linux-gnu
  for l in ld-linux-aarch64.so.1 libc.so.6 libm.so.6 libgcc_s.so.1 libdl.so.2 librt.so.1 \
    libpthread.so.0 libstdc++.so.6; do
    cp -L /lib/aarch64-linux-gnu/$l $root/lib/aarch64-linux-gnu/
  done
  ln -s aarch64-linux-gnu/ld-linux-aarch64.so.1 $root/lib/ld-linux-aarch64.so.1
  cat >$root/opt/site.toml <<'EOF'
[model]
input_size = "320x240"
threads = 2
models_dir = "/opt/mg/models/quantized"
[gpio]
backend = "cdev"
chip = "/dev/gpiochip0"
green_led = 0
red_led = 1
buzzer = 2
[display]
enabled = false
[service]
watchdog = false
EOF
  cp scripts/qemu/vm-gpio.sh $root/init
  qemu=(qemu-system-aarch64 -M virt -cpu cortex-a72 -accel tcg,thread=multi -smp 2 -m 1024)
  console=ttyAMA0
  want="gpiochip gpio-permission gpio-verdict gpio-sigterm"
  what="PL061 GPIO, aarch64 build"
fi
cp scripts/qemu/vm-lib.sh $root/lib.sh
chmod +x $root/init
# uncompressed: the kernel unpacks it faster than it would decompress it
(cd $root && find . | cpio -o -H newc --quiet) >$work/initramfs.cpio

echo "== driver VM ($arch): $kver, $what (${qemu[0]}, TCG) =="
log=$work/console.log
start=$(date +%s)
timeout 600 "${qemu[@]}" -kernel "$kdir/boot/vmlinuz-$kver" -initrd $work/initramfs.cpio \
  -append "console=$console quiet panic=-1 rdinit=/init" \
  -nographic -no-reboot -nic none </dev/null >$log 2>&1 || true
tr -d '\r' <$log | grep -o 'CHECK .*' || true
echo "driver VM ($arch): $(($(date +%s) - start)) s (console: $log)"
failed=0
for c in $want; do
  if ! tr -d '\r' <$log | grep -q "CHECK ok $c:"; then
    echo "driver VM ($arch): check $c did not pass" >&2
    failed=1
  fi
done
if tr -d '\r' <$log | grep -q 'CHECK FAIL'; then failed=1; fi
if [ $failed = 1 ]; then
  tr -d '\r' <$log | sed -n '/^--- maskgate log/,$p' | tail -40 >&2
  exit 1
fi
echo "driver VM ($arch): all $(echo $want | wc -w) checks passed"
