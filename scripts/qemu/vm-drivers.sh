#!/bin/sh
# /init of the driver VM (scripts/qemu/test-drivers.sh builds the initramfs around it): busybox
# sh as PID 1 on Debian's kernel, real drivers, the real maskgate binary. Prints one line per
# check, "CHECK ok NAME: detail" or "CHECK FAIL NAME: detail", then powers off; the host script
# reads them from the serial console.
#
# The camera is vivid, set up as a capture card with one HDMI input and no scaler
# (ccs_cap_mode=0): it grants only the input's 1280x720 whatever is asked, and never MJPEG.
# Face frames reach it through vivid's own video loopback: a YUYV picture of a face streamed
# into vivid's HDMI output by v4l2-ctl comes back out of the capture device (loop_video).
# The display bus is i2c-stub with a chip at 0x3c, which speaks SMBus only.

. /lib.sh

for m in mc rc-core cec videodev v4l2-dv-timings v4l2-tpg videobuf2-common videobuf2-memops \
  videobuf2-v4l2 videobuf2-vmalloc videobuf2-dma-contig i2c-dev; do
  insmod /mods/$m.ko || fail modules "insmod $m"
done
insmod /mods/i2c-stub.ko chip_addr=0x3c || fail modules "insmod i2c-stub"

FEED=
vivid_up() {
  insmod /mods/vivid.ko n_devs=1 node_types=0x101 num_inputs=1 input_types=0x3 \
    num_outputs=1 output_types=0x1 ccs_cap_mode=0 ccs_out_mode=0 || return 1
  v4l2-ctl -d /dev/video0 -c loop_video=1 || return 1
  v4l2-ctl -d /dev/video1 --stream-out-mmap --stream-from=/opt/face.yuyv --stream-loop \
    >/tmp/feed.log 2>&1 &
  FEED=$!
}
vivid_up && ok vivid "capture /dev/video0 looped from output /dev/video1, $(cat /sys/class/video4linux/video0/name)" \
  || fail vivid "cannot set up vivid"

cd /opt/mg
./maskgate run --config /opt/site.toml --source /dev/video0 >/tmp/out.log 2>/tmp/mg.log &
MG=$!

# 1. negotiation: 640x480 MJPEG asked, 1280x720 YUYV granted, and said so
if wait_for /tmp/mg.log "maskgate run starting" 120; then
  if grep -q 'camera granted a different mode asked=640x480 MJPG @ 15 fps granted=/dev/video0 1280x720 YUYV' /tmp/mg.log; then
    ok v4l2-negotiation "$(grep -o 'asked=.*' /tmp/mg.log | head -1)"
  else
    fail v4l2-negotiation "$(grep camera /tmp/mg.log | head -3)"
  fi
else
  fail start "maskgate did not start: $(tail -3 /tmp/mg.log)"
fi

# 2. the display: the kernel says the adapter is SMBus-only; said once, the door runs on
if grep -q 'SMBus transfers only' /tmp/mg.log; then
  ok i2c-smbus-only "$(grep -o 'display=[^ ]*' /tmp/mg.log | head -1): degraded, door running"
else
  fail i2c-smbus-only "$(grep -i display /tmp/mg.log | head -3)"
fi

# 3. a verdict on the face frames that came through the kernel
if wait_for /tmp/mg.log 'verdict verdict="no_mask"' 90; then
  ok v4l2-verdict "$(grep -o 'verdict verdict=.*' /tmp/mg.log | head -1)"
else
  fail v4l2-verdict "no verdict: $(tail -3 /tmp/mg.log)"
fi

# 4. vivid's disconnect control mid-stream (an unplugged camera): lost, then reopened
v4l2-ctl -d /dev/video0 -c disconnect=1
if wait_for /tmp/mg.log 'camera lost' 20 && wait_for /tmp/mg.log 'camera reopened' 30; then
  ok v4l2-disconnect "$(grep -o 'camera lost.*' /tmp/mg.log | head -1 | cut -c1-90); reopened"
else
  fail v4l2-disconnect "$(grep camera /tmp/mg.log | tail -3)"
fi

# 5. the driver removed mid-stream: rmmod needs every file closed, which happens between a
# disconnect and maskgate's next reopen; then the device is gone until insmod
removed=0
for try in 1 2 3 4 5 6 7 8; do
  kill $FEED 2>/dev/null
  v4l2-ctl -d /dev/video0 -c disconnect=1 2>/dev/null
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    if rmmod vivid 2>/dev/null; then removed=1; break 2; fi
    sleep 0.1
  done
done
if [ $removed = 1 ] && [ ! -e /dev/video0 ]; then
  sleep 4
  if kill -0 $MG 2>/dev/null; then
    ok v4l2-rmmod "vivid removed after $try disconnect(s); /dev/video0 gone, maskgate still running"
  else
    fail v4l2-rmmod "maskgate exited: $(tail -3 /tmp/mg.log)"
  fi
  before=$(grep -c 'camera reopened' /tmp/mg.log)
  verdicts=$(grep -c 'verdict verdict=' /tmp/mg.log)
  vivid_up || fail v4l2-insmod "cannot load vivid again"
  if wait_for /tmp/mg.log 'camera reopened' 30 $((before + 1)); then
    ok v4l2-insmod "reopened with back-off after the driver came back"
  else
    fail v4l2-insmod "not reopened: $(grep camera /tmp/mg.log | tail -3)"
  fi
  if wait_for /tmp/mg.log 'verdict verdict="no_mask"' 90 $((verdicts + 1)); then
    ok v4l2-verdict-after-reload "$(grep -o 'verdict verdict=.*' /tmp/mg.log | tail -1)"
  else
    fail v4l2-verdict-after-reload "$(tail -3 /tmp/mg.log)"
  fi
else
  fail v4l2-rmmod "vivid could not be removed (maskgate kept it open)"
fi

# 6. SIGTERM: an orderly stop
if ! term_wait $MG 20; then
  fail sigterm "still running 20 s after SIGTERM"
else
  if [ $rc = 0 ] && grep -q 'shutdown 5/5' /tmp/mg.log; then
    ok sigterm "exit 0, $(grep -o 'stopped frames=.*' /tmp/mg.log | cut -d' ' -f1-4)"
  else
    fail sigterm "exit $rc: $(tail -2 /tmp/mg.log)"
  fi
fi
# the lines once ("logged once"): the display line must not repeat over the run
n=$(grep -c 'SMBus transfers only' /tmp/mg.log)
[ "$n" = 1 ] && ok i2c-logged-once "1 line in $(wc -l </tmp/mg.log) log lines" \
  || fail i2c-logged-once "$n lines"

echo "--- maskgate log"
grep -v 'schedule_timeout' /tmp/mg.log | cut -c29-200
echo "VM-DONE"
poweroff -f
