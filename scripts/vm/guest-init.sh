#!/bin/sh
# /init of the virtio-fs test VM (busybox ash, PID 1). Loads the virtio-fs modules, mounts
# the share whose tag is on the kernel command line, runs one guest test, unmounts and
# powers off. The host reads the console for these lines:
#   DPUSTOR-GUEST START test=NAME tag=TAG kernel=VERSION
#   DPUSTOR-GUEST STEP  what the test is doing (progress, for failure messages)
#   DPUSTOR-GUEST RESULT pass                 after the test, sync and unmount succeeded
#   DPUSTOR-GUEST RESULT fail REASON          anything else; printed exactly once
# Kernel command line: dpustor.tag=TAG (required), dpustor.test=files|second (default files),
# dpustor.mnt=DIR (default /mnt).
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/null >/dev/console 2>&1

finish() {
  echo "DPUSTOR-GUEST RESULT $*"
  # The line must reach the host before the power goes off.
  sleep 0.2
  poweroff -f
  sleep 10
}

TAG=""
TEST=files
MNT=/mnt
# shellcheck disable=SC2013 # the command line is words, not lines
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    dpustor.tag=*) TAG="${arg#dpustor.tag=}" ;;
    dpustor.test=*) TEST="${arg#dpustor.test=}" ;;
    dpustor.mnt=*) MNT="${arg#dpustor.mnt=}" ;;
  esac
done
echo "DPUSTOR-GUEST START test=$TEST tag=$TAG kernel=$(cat /lib/modules/kernel-version)"
[ -n "$TAG" ] || finish "fail no dpustor.tag= on the kernel command line"

while read -r module; do
  insmod "/lib/modules/$module" || finish "fail insmod $module"
done </lib/modules/load-order

# The PCI probe runs inside insmod, but give a slow emulated machine a few tries.
mkdir -p "$MNT"
tries=0
until mount -t virtiofs "$TAG" "$MNT"; do
  tries=$((tries + 1))
  [ "$tries" -lt 20 ] || finish "fail mount -t virtiofs $TAG $MNT"
  sleep 0.5
done
echo "DPUSTOR-GUEST STEP mounted $TAG on $MNT"

# The test writes its failure reason into this file and exits non-zero.
REASON=/tmp/reason
rm -f "$REASON"
sh /guest-test.sh "$TEST" "$MNT" "$REASON"
rc=$?
cd /
sync
umount_ok=1
umount "$MNT" || umount_ok=0
if [ "$rc" -ne 0 ]; then
  finish "fail $(cat "$REASON" 2>/dev/null || echo "guest test exited with status $rc")"
fi
[ "$umount_ok" -eq 1 ] || finish "fail umount $MNT"
finish pass
