#!/usr/bin/env bash
# maskgate against real kernel drivers: boots Debian's own kernel (scripts/qemu/fetch-kernel.sh)
# in a throw-away qemu-system-x86_64 VM (TCG: this machine's /dev/kvm does not boot a stock
# kernel) with vivid as the camera and i2c-stub as the display bus, and runs the release binary
# as the door there (scripts/qemu/vm-drivers.sh is the VM's /init and says what is checked).
# About a minute. Skips with a message when qemu, busybox-static, v4l-utils, ffmpeg or the
# kernel package cannot be had (scripts/setup.sh installs them all).
#
#   scripts/qemu/test-drivers.sh       exit 0: every check passed (or skipped); 1: one failed
set -euo pipefail
cd "$(dirname "$0")/../.."
skip() {
  echo "SKIPPED: driver VM: $*"
  exit 0
}
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 not installed (apt install qemu-system-x86)"
command -v v4l2-ctl >/dev/null || skip "v4l2-ctl not installed (apt install v4l-utils)"
command -v ffmpeg >/dev/null || skip "ffmpeg not installed"
command -v cpio >/dev/null || skip "cpio not installed"
busybox=/bin/busybox
{ [ -x $busybox ] && ! ldd $busybox >/dev/null 2>&1; } || skip "no static busybox (apt install busybox-static)"
kdir=$(scripts/qemu/fetch-kernel.sh 2>/dev/null) || skip "the Debian kernel package cannot be fetched (scripts/qemu/fetch-kernel.sh)"
kver=$(basename "$kdir"/boot/vmlinuz-* | sed 's/^vmlinuz-//')
kmods=$kdir/lib/modules/$kver/kernel

cargo build --release --bin maskgate
rt=target/release/libtensorflowlite_c.so
[ -f $rt ] || { echo "test-drivers: $rt missing (scripts/provision-tflite.sh)" >&2; exit 1; }

work=target/vm
root=$work/root
rm -rf $root
mkdir -p $root/{bin,dev,proc,sys,tmp,mods,opt/mg/models/quantized,usr/bin}
cp $busybox $root/bin/busybox
for a in sh mount insmod rmmod ls cat echo sleep poweroff grep head tail sed kill wc cut tr; do
  ln -s busybox $root/bin/$a
done
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
cp models/quantized/retinaface_mnet025_320x240_int8.tflite models/quantized/mask_resnet_int8.tflite \
  $root/opt/mg/models/quantized/
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
chmod +x $root/init
# uncompressed: the kernel unpacks it faster than it would decompress it
(cd $root && find . | cpio -o -H newc --quiet) >$work/initramfs.cpio

echo "== driver VM: $kver, vivid + i2c-stub (qemu-system-x86_64, TCG) =="
log=$work/console.log
start=$(date +%s)
timeout 600 qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1536 \
  -kernel "$kdir/boot/vmlinuz-$kver" -initrd $work/initramfs.cpio \
  -append "console=ttyS0 quiet panic=-1 rdinit=/init" \
  -nographic -no-reboot -nic none </dev/null >$log 2>&1 || true
tr -d '\r' <$log | grep -o 'CHECK .*' || true
echo "driver VM: $(( $(date +%s) - start )) s (console: $log)"
want="vivid v4l2-negotiation i2c-smbus-only v4l2-verdict v4l2-disconnect v4l2-rmmod v4l2-insmod v4l2-verdict-after-reload sigterm i2c-logged-once"
failed=0
for c in $want; do
  if ! tr -d '\r' <$log | grep -q "CHECK ok $c:"; then
    echo "driver VM: check $c did not pass" >&2
    failed=1
  fi
done
if tr -d '\r' <$log | grep -q 'CHECK FAIL'; then failed=1; fi
if [ $failed = 1 ]; then
  tr -d '\r' <$log | sed -n '/^--- maskgate log/,$p' | tail -40 >&2
  exit 1
fi
echo "driver VM: all $(echo $want | wc -w) checks passed"
