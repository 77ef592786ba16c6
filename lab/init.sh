#!/bin/busybox sh
# /init of the lab's initramfs: host root over 9p (read-only) + tmpfs overlay, then runs the
# command the host left in the shared dir (lab.share= on the kernel command line) and powers off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() { echo "@@LAB-FAIL $*@@"; echo o > /proc/sysrq-trigger; sleep 5; }

SHARE=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in lab.share=*) SHARE="${arg#lab.share=}" ;; esac
done
[ -n "$SHARE" ] || fail "no lab.share= on the kernel command line"

for m in $(cat /mods/order); do insmod "/mods/$m" || fail "insmod $m"; done

mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot /host || fail "mount hostroot"
mount -t tmpfs -o size=60% tmpfs /ovl
mkdir -p /ovl/upper /ovl/work
mount -t overlay overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work /mnt || fail "mount overlay"

KVER="$(uname -r)"
mkdir -p /mnt/lib/modules
mount -t 9p -o trans=virtio,version=9p2000.L,ro modules /mnt/lib/modules || fail "mount modules"
mount -t proc proc /mnt/proc
mount -t sysfs sysfs /mnt/sys
mount -t devtmpfs devtmpfs /mnt/dev
# /tmp stays the (writable) overlay of the host's /tmp: the checkout under test may live there.
mount -t tmpfs tmpfs /mnt/run
mkdir -p "/mnt$SHARE"
# msize 512k: node reads whole files through 9p; the default 8k makes that slow under TCG.
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 labshare "/mnt$SHARE" || fail "mount labshare"

# Kernel module autoload (schedulers, "IPVS" genl family) runs the usermode helper in the
# initramfs root, not in the chroot: route it to the host modprobe over the real module tree.
printf '#!/bin/busybox sh\nexec /bin/busybox chroot /mnt /sbin/modprobe "$@"\n' > /bin/lab-modprobe
chmod 755 /bin/lab-modprobe
echo /bin/lab-modprobe > /proc/sys/kernel/modprobe

# IPVS refuses every destination ("address not unicast", EINVAL) while all interfaces are down.
ip link set lo up

echo "@@LAB-START kernel=$KVER@@"
chroot /mnt /bin/sh "$SHARE/cmd.sh" < /dev/console
rc=$?
echo "$rc" > "/mnt$SHARE/rc"
sync
echo "@@LAB-END rc=$rc@@"
echo o > /proc/sysrq-trigger
sleep 10
