#!/bin/busybox sh
# /init of the kernel-matrix guest (copied into the initramfs by vm/matrix.sh).
#
# It runs as PID 1 under busybox: loads the few modules needed to reach the
# host's files (virtio, virtiofs, overlay), mounts the host's / (shared read-only
# by virtiofsd as tag "hostroot") under a tmpfs overlay so the guest can write
# without touching the host, mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /run,
# /tmp and cgroup2 inside it, then chroots into it and runs the job script that
# vm/matrix.sh wrote (its path is on the kernel command line). The job's exit
# code is printed as a marker on the serial console, then the guest powers off.
# It deliberately mounts no tracefs, bpffs, securityfs or debugfs: shrike must
# mount those itself.

export PATH=/bin:/sbin
/bin/busybox mkdir -p /bin /sbin /proc /sys /dev
/bin/busybox --install -s
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

JOB='' NONCE=none MODULES=''
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    shrike.job=*) JOB=${arg#shrike.job=} ;;
    shrike.nonce=*) NONCE=${arg#shrike.nonce=} ;;
    shrike.modules=*) MODULES=${arg#shrike.modules=} ;;
  esac
done
RELEASE=$(uname -r)
R=/newroot

# Report a failure of the guest set-up itself; the host shows it as FAIL.
fail() {
  echo "vm-guest: error: $*"
  printf '\nSHRIKE_VM_RESULT:%s:126:%s\n' "$NONCE" "$(cut -d' ' -f1 /proc/uptime)"
  sync
  poweroff -f
  sleep 5
}

load_modules() {
  [ -f /modules/order ] || return 0
  while read -r m; do
    [ -n "$m" ] || continue
    insmod "/modules/$m" || fail "insmod $m failed"
  done </modules/order
}

mount_host_root() {
  mkdir -p /lower /upper "$R"
  mount -t virtiofs -o ro hostroot /lower ||
    fail "cannot mount the host's / (virtiofs tag hostroot): is virtiofsd running on the host?"
  mount -t tmpfs -o mode=0755 upper /upper
  mkdir -p /upper/data /upper/work
  mount -t overlay overlay -o lowerdir=/lower,upperdir=/upper/data,workdir=/upper/work "$R" ||
    fail "cannot mount the overlay over the host's /"
}

mount_system_dirs() {
  mount -t proc proc "$R/proc"
  mount -t sysfs sysfs "$R/sys"
  mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup" || echo "vm-guest: warning: no cgroup2"
  mount -t devtmpfs devtmpfs "$R/dev"
  mkdir -p "$R/dev/pts" "$R/dev/shm"
  mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts "$R/dev/pts"
  mount -t tmpfs -o mode=1777 shm "$R/dev/shm"
  mount -t tmpfs -o mode=0755 run "$R/run"
  mount -t tmpfs -o mode=1777 tmp "$R/tmp"
  mount -t tmpfs -o mode=1777 vartmp "$R/var/tmp"
}

# The kernel's own module tree lives in the host's vm/cache; show it at
# /lib/modules/<release> both here (the kernel runs /sbin/modprobe from the
# initramfs root for automatic loads, e.g. veth) and inside the chroot.
bind_kernel_modules() {
  [ -n "$MODULES" ] && [ -d "$R$MODULES" ] || { echo "vm-guest: warning: no module tree"; return 0; }
  mkdir -p "/lib/modules/$RELEASE" "$R/lib/modules/$RELEASE"
  mount --bind "$R$MODULES" "/lib/modules/$RELEASE"
  mount --bind "$R$MODULES" "$R/lib/modules/$RELEASE"
  echo /sbin/modprobe >/proc/sys/kernel/modprobe
}

main() {
  # One line before anything can block, so a boot that hangs shows whether the
  # kernel reached /init (the kernel itself is "quiet").
  echo "vm-guest: /init started on $RELEASE"
  [ -n "$JOB" ] || fail "no shrike.job= on the kernel command line"
  load_modules
  mount_host_root
  mount_system_dirs
  bind_kernel_modules
  ip link set lo up
  hostname shrike-vm
  [ -f "$R$JOB" ] || fail "job script $JOB not visible in the guest"
  printf '\n'
  echo "SHRIKE_VM_START:$NONCE:$(cut -d' ' -f1 /proc/uptime)"
  chroot "$R" /usr/bin/env -i /bin/bash "$JOB" </dev/null
  rc=$?
  printf '\n'
  echo "SHRIKE_VM_RESULT:$NONCE:$rc:$(cut -d' ' -f1 /proc/uptime)"
  sync
  poweroff -f
  sleep 5
}

main
