#!/bin/sh
# Prepares the real-kernel lab (Debian 6.1 kernel + modules + busybox initramfs) under a cache dir.
# Idempotent: a finished cache is reused as is; prints the path of the lab env file on success.
set -eu

CACHE="${SUREALIVED_LAB_CACHE:-${HOME:-/root}/.cache/surealived-ts/lab}"
HERE="$(cd "$(dirname "$0")" && pwd)"
# Bump when the initramfs layout or init script changes, so old caches are rebuilt.
LAB_REV=6
ENVFILE="$CACHE/lab.env"

log() { echo "lab/setup: $*" >&2; }

mkdir -p "$CACHE"
# Several mocha runs (or a developer and CI) may call this at once: serialise on a lock file.
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

need_pkgs=""
for p in qemu-system-x86 busybox-static cpio kmod ipvsadm; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_pkgs="$need_pkgs $p"
done

APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
}

if [ -n "$need_pkgs" ]; then
  apt_update
  log "installing$need_pkgs"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need_pkgs >&2
fi
export PATH="$PATH:/sbin:/usr/sbin"

if [ -f "$ENVFILE" ] && grep -q "^LAB_REV=$LAB_REV\$" "$ENVFILE"; then
  . "$ENVFILE"
  if [ -f "$KERNEL" ] && [ -f "$INITRD" ] && [ -d "$MODULES" ]; then
    echo "$ENVFILE"
    exit 0
  fi
fi

# The metapackage depends on the current ABI's image (linux-image-6.1.0-<N>-amd64).
resolve_kpkg() {
  apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1
}
KPKG="$(resolve_kpkg)"
if [ -z "$KPKG" ]; then apt_update; KPKG="$(resolve_kpkg)"; fi
[ -n "$KPKG" ] || { log "cannot resolve the kernel package from linux-image-amd64"; exit 1; }
KVER="${KPKG#linux-image-}"
log "kernel package $KPKG"

KDIR="$CACHE/kernel-$KVER"
if [ ! -f "$KDIR/.extracted" ]; then
  rm -rf "$KDIR" "$CACHE/dl"
  mkdir -p "$CACHE/dl" "$KDIR"
  (cd "$CACHE/dl" && apt-get download "$KPKG" >&2) || { apt_update; (cd "$CACHE/dl" && apt-get download "$KPKG" >&2); }
  dpkg -x "$CACHE"/dl/*.deb "$KDIR"
  rm -rf "$CACHE/dl"
  touch "$KDIR/.extracted"
fi
# Debian 12 has /lib -> usr/lib; the image package may ship either layout.
if [ -d "$KDIR/lib/modules/$KVER" ]; then MODROOT="$KDIR"; else MODROOT="$KDIR/usr"; fi
depmod -b "$MODROOT" "$KVER"

# Build the initramfs: static busybox + the modules needed to reach the 9p/overlay root.
IRD="$CACHE/initramfs.build"
rm -rf "$IRD"
mkdir -p "$IRD/bin" "$IRD/mods" "$IRD/proc" "$IRD/sys" "$IRD/dev" "$IRD/host" "$IRD/mnt" "$IRD/ovl"
cp /bin/busybox "$IRD/bin/busybox"
# modprobe prints the insmod lines in dependency order; "builtin" lines need nothing.
modprobe -a -d "$MODROOT" -S "$KVER" --show-depends virtio_pci 9pnet_virtio 9p overlay 2>/dev/null \
  | sed -n 's/^insmod \([^ ]*\).*/\1/p' > "$IRD/mods.list.host"
[ -s "$IRD/mods.list.host" ] || { log "modprobe --show-depends found no modules"; exit 1; }
: > "$IRD/mods/order"
seen=""
while read -r ko; do
  b="$(basename "$ko")"
  case " $seen " in *" $b "*) continue ;; esac
  seen="$seen $b"
  cp "$ko" "$IRD/mods/$b"
  echo "$b" >> "$IRD/mods/order"
done < "$IRD/mods.list.host"
rm -f "$IRD/mods.list.host"
cp "$HERE/init.sh" "$IRD/init"
chmod 755 "$IRD/init" "$IRD/bin/busybox"
(cd "$IRD" && find . | cpio -o -H newc --quiet | gzip -1 > "$CACHE/initramfs.cpio.gz.tmp")
mv "$CACHE/initramfs.cpio.gz.tmp" "$CACHE/initramfs.cpio.gz"
rm -rf "$IRD"

cat > "$ENVFILE.tmp" <<EOF
LAB_REV=$LAB_REV
KVER=$KVER
KERNEL=$KDIR/boot/vmlinuz-$KVER
INITRD=$CACHE/initramfs.cpio.gz
MODULES=$MODROOT/lib/modules
EOF
mv "$ENVFILE.tmp" "$ENVFILE"
log "ready: kernel $KVER"
echo "$ENVFILE"
