#!/bin/sh
# /init of the aarch64 GPIO VM (scripts/qemu/test-drivers.sh --arch arm64): Debian's arm64
# kernel on qemu's `virt` board, whose PL061 controller is /dev/gpiochip0, and the aarch64
# release binary driving its lines through gpio-cdev (gpio.backend = "cdev", lines 0 / 1 / 2 =
# green / red / buzzer). Line states are read back from the kernel (debugfs, then sysfs after
# maskgate has released them). Same CHECK lines as vm-drivers.sh.

. /lib.sh
mount -t debugfs debugfs /sys/kernel/debug

# line N's state as debugfs shows it while requested: "out hi" / "out lo"
line_state() {
  grep "gpio-$((base + $1)) " /sys/kernel/debug/gpio | grep -o 'out [hilo]*'
}

chip=$(ls -d /sys/class/gpio/gpiochip* 2>/dev/null | head -1)
if [ -e /dev/gpiochip0 ] && [ -n "$chip" ]; then
  base=$(cat $chip/base)
  ok gpiochip "/dev/gpiochip0: $(cat $chip/label), $(cat $chip/ngpio) lines from $base"
else
  fail gpiochip "no /dev/gpiochip0"
fi

# a service user outside the gpio group
echo 'root:x:0:0::/tmp:/bin/sh' >/etc/passwd
echo 'door:x:1000:1000::/tmp:/bin/sh' >>/etc/passwd
printf 'root:x:0:\ngpio:x:997:\ndoor:x:1000:\n' >/etc/group
chgrp 997 /dev/gpiochip0
chmod 660 /dev/gpiochip0
cd /opt/mg
su -s /bin/sh door -c "./maskgate run --config /opt/site.toml --source /opt/face.jpg --max-frames 1" \
  >/tmp/user.out 2>/tmp/user.log
rc=$?
if [ $rc = 1 ] && grep -q 'add the service user to the gpio group' /tmp/user.log; then
  ok gpio-permission "exit 1: $(grep -o 'cannot open /dev/gpiochip0.*group' /tmp/user.log | head -1)"
else
  fail gpio-permission "exit $rc: $(tail -2 /tmp/user.log)"
fi

./maskgate run --config /opt/site.toml --source /opt/face.jpg --loop --fps 4 \
  >/tmp/out.log 2>/tmp/mg.log &
MG=$!
if wait_for /tmp/mg.log 'verdict verdict="no_mask"' 120; then
  # the red LED holds for decision.hold_ms (2 s) from the verdict
  g=$(line_state 0)
  r=$(line_state 1)
  cat /sys/kernel/debug/gpio
  if [ "$r" = "out hi" ] && [ "$g" = "out lo" ]; then
    ok gpio-verdict "no_mask: red line 1 $r, green line 0 $g (debugfs)"
  else
    fail gpio-verdict "red '$r', green '$g'"
  fi
else
  fail gpio-verdict "no verdict: $(tail -3 /tmp/mg.log)"
fi
# SIGTERM while the red LED may still be lit
rc=killed
term_wait $MG 30 || fail gpio-sigterm "still running 30 s after SIGTERM"
held=$(grep -c "gpio-$base \|gpio-$((base + 1)) \|gpio-$((base + 2)) " /sys/kernel/debug/gpio)
levels=
for n in 0 1 2; do
  echo $((base + n)) >/sys/class/gpio/export
  levels="$levels$(cat /sys/class/gpio/gpio$((base + n))/direction)=$(cat /sys/class/gpio/gpio$((base + n))/value) "
  echo $((base + n)) >/sys/class/gpio/unexport
done
if [ $rc = 0 ] && [ "$held" = 0 ] && [ "$levels" = "out=0 out=0 out=0 " ]; then
  ok gpio-sigterm "exit 0, lines released and low: $levels"
else
  fail gpio-sigterm "exit $rc, $held lines still requested, levels $levels"
fi

echo "--- maskgate log"
cut -c29-200 /tmp/mg.log
echo "VM-DONE"
poweroff -f
