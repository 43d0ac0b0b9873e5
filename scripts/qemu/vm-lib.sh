# Sourced by the driver VMs' /init scripts (vm-drivers.sh, vm-gpio.sh) as /lib.sh: the
# filesystems, quiet kernel, and the CHECK line helpers the host script reads.
export PATH=/bin:/usr/bin LD_LIBRARY_PATH=/opt/mg HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo 3 >/proc/sys/kernel/printk
# the firmware's last escape codes end without a newline
echo

ok() { echo "CHECK ok $1: $2"; }
fail() { echo "CHECK FAIL $1: $2"; }
# wait_for FILE PATTERN SECONDS [COUNT]: until PATTERN matches COUNT lines (default 1) of FILE
wait_for() {
  i=0
  while [ $i -lt $(($3 * 5)) ]; do
    n=$(grep -c -- "$2" "$1" 2>/dev/null)
    [ "${n:-0}" -ge "${4:-1}" ] && return 0
    sleep 0.2
    i=$((i + 1))
  done
  return 1
}
# term_wait PID SECONDS: SIGTERM, then up to SECONDS for the exit; 0 with its status in $rc,
# or 1 (the process is then killed)
term_wait() {
  kill -TERM $1
  i=0
  while kill -0 $1 2>/dev/null && [ $i -lt $(($2 * 5)) ]; do
    sleep 0.2
    i=$((i + 1))
  done
  if kill -0 $1 2>/dev/null; then
    kill -KILL $1
    wait $1
    return 1
  fi
  wait $1
  rc=$?
  return 0
}
