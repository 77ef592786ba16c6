#!/bin/sh
# Prepares the real-kernel lab (Debian 6.1 kernel + modules + busybox initramfs) under a cache dir.
# Idempotent: a finished cache is reused as is; prints the path of the lab env file on success.
#
#   setup.sh                       the lab alone
#   setup.sh --kbuild [PATH...]    the lab plus what building a module for its kernel needs: the
#                                  headers of the very Debian version of the image, make, gcc-12 and
#                                  patch, and the kernel source files PATH (e.g. net/netfilter/xt_recent.c)
#                                  from linux-source of that same version, under $KSRC.
#
# The lab follows the apt index: when linux-image-amd64 depends on another ABI than the cached kernel,
# or (--kbuild) the archive no longer has the cached kernel's headers or source, the lab is rebuilt for
# the current kernel instead of failing or handing out a kernel and headers that do not match.
# With everything cached and installed nothing is downloaded, so the lab keeps working offline.
set -eu

CACHE="${SUREALIVED_LAB_CACHE:-${HOME:-/root}/.cache/surealived-ts/lab}"
HERE="$(cd "$(dirname "$0")" && pwd)"
# Bump when the initramfs layout, the init script or lab.env changes, so old caches are rebuilt.
# 7: lab.env carries the image's Debian version (KPKGVER), HEADERS and KSRC.
LAB_REV=7
ENVFILE="$CACHE/lab.env"

KBUILD=0
if [ "${1:-}" = "--kbuild" ]; then
  KBUILD=1
  shift
fi
SRCS="$*"

log() { echo "lab/setup: $*" >&2; }
die() { log "$*"; exit 1; }

mkdir -p "$CACHE"
# Several mocha runs (or a developer and CI) may call this at once: serialise on a lock file.
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi

export DEBIAN_FRONTEND=noninteractive
# Wait for another apt/dpkg run on the machine instead of failing at once.
APT_OPTS="-o DPkg::Lock::Timeout=300"

need_pkgs=""
for p in qemu-system-x86 busybox-static cpio kmod ipvsadm keepalived iptables nftables; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need_pkgs="$need_pkgs $p"
done

APT_UPDATED=0
apt_update() {
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    apt-get $APT_OPTS update -qq >&2
    APT_UPDATED=1
  fi
}

if [ -n "$need_pkgs" ]; then
  apt_update
  log "installing$need_pkgs"
  apt-get $APT_OPTS install -y -qq --no-install-recommends $need_pkgs >&2
fi
export PATH="$PATH:/sbin:/usr/sbin"

# "linux-image-6.1.0-<N>-amd64 <version>": the image the metapackage depends on (the current ABI) and
# the version apt would fetch; empty when the index cannot say. Memoised on the index files' stamps:
# apt-cache takes 1-3 s per call where apt's own cache is off (Dir::Cache::pkgcache "").
resolve_kpkg() {
  # "2": the memo's format (image and version).
  stamp="2 $(ls -l --full-time /var/lib/apt/lists /etc/apt/sources.list /etc/apt/sources.list.d /etc/apt/preferences.d 2>/dev/null | cksum)"
  if [ -f "$CACHE/index.kpkg" ] && [ "$(head -n1 "$CACHE/index.kpkg")" = "$stamp" ]; then
    sed -n 2p "$CACHE/index.kpkg"
    return 0
  fi
  k="$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)"
  v=""
  [ -z "$k" ] || v="$(apt-cache policy "$k" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
  r=""
  [ -z "$k" ] || [ -z "$v" ] || [ "$v" = "(none)" ] || r="$k $v"
  printf '%s\n%s\n' "$stamp" "$r" > "$CACHE/index.kpkg.tmp" && mv "$CACHE/index.kpkg.tmp" "$CACHE/index.kpkg"
  echo "$r"
}

# linux-source-6.1 for 6.1.0-57-amd64.
source_pkg() {
  echo "linux-source-$(echo "$1" | sed -n 's/^\([0-9]*\.[0-9]*\)\..*/\1/p')"
}

# Whether the apt index offers package $1 at exactly version $2.
in_index() {
  apt-cache madison "$1" 2>/dev/null | awk -F'|' -v v="$2" '{ gsub(/ /, "", $2); if ($2 == v) f = 1 } END { exit !f }'
}

installed_version() {
  dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null | sed -n 's/^install ok installed //p'
}

# --kbuild is satisfied without touching apt: headers of the image's version installed, tools there,
# every requested source file extracted.
kbuild_ready() {
  [ "$(installed_version "linux-headers-$KVER")" = "$KPKGVER" ] || return 1
  for t in make gcc-12 patch strip; do command -v "$t" >/dev/null 2>&1 || return 1; done
  for f in $SRCS; do [ -f "$KSRC/$f" ] || return 1; done
  return 0
}

# Installs the headers and tools and extracts the source files; returns 1 when the archive does not
# (or no longer) offer the headers or the source at the image's version.
kbuild_prepare() {
  spkg="$(source_pkg "$KVER")"
  if ! in_index "linux-headers-$KVER" "$KPKGVER" || ! in_index "$spkg" "$KPKGVER"; then
    apt_update
    in_index "linux-headers-$KVER" "$KPKGVER" || { log "the archive has no linux-headers-$KVER $KPKGVER"; return 1; }
    in_index "$spkg" "$KPKGVER" || { log "the archive has no $spkg $KPKGVER"; return 1; }
  fi
  # Only what is missing: naming an installed tool would upgrade it.
  pkgs=""
  if [ "$(installed_version "linux-headers-$KVER")" != "$KPKGVER" ]; then
    pkgs="linux-headers-$KVER=$KPKGVER"
    # Headers this script installs are its to remove when the lab moves to another kernel.
    grep -qx "$KVER" "$CACHE/headers.installed" 2>/dev/null || echo "$KVER" >> "$CACHE/headers.installed"
  fi
  for t in make:make gcc-12:gcc-12 patch:patch strip:binutils xz:xz-utils; do
    command -v "${t%%:*}" >/dev/null 2>&1 || pkgs="$pkgs ${t#*:}"
  done
  if [ -n "$pkgs" ]; then
    log "installing $pkgs"
    apt-get $APT_OPTS install -y -qq --no-install-recommends $pkgs >&2 || {
      apt_update
      apt-get $APT_OPTS install -y -qq --no-install-recommends $pkgs >&2 || return 1
    }
  fi
  [ "$(installed_version "linux-headers-$KVER")" = "$KPKGVER" ] || { log "linux-headers-$KVER is not at $KPKGVER after install"; return 1; }
  grep -q "\"$KVER\"" "$HEADERS/include/generated/utsrelease.h" || { log "$HEADERS is not for $KVER"; return 1; }
  missing=""
  for f in $SRCS; do [ -f "$KSRC/$f" ] || missing="$missing $spkg/$f"; done
  if [ -n "$missing" ]; then
    dl="$CACHE/dl-src"
    rm -rf "$dl"
    mkdir -p "$dl"
    log "fetching$missing from $spkg $KPKGVER"
    (cd "$dl" && apt-get $APT_OPTS download "$spkg=$KPKGVER" >&2) || {
      apt_update
      (cd "$dl" && apt-get $APT_OPTS download "$spkg=$KPKGVER" >&2) || { rm -rf "$dl"; return 1; }
    }
    # Only the wanted files: the whole tree is 136 MB. The deb holds one tarball of the tree.
    # (This runs as an `if` condition, where set -e does not apply: every step is checked.)
    dpkg-deb --fsys-tarfile "$dl"/*.deb | tar -xOf - "./usr/src/$spkg.tar.xz" | (cd "$dl" && tar -xJf - $missing) ||
      { log "cannot extract$missing"; rm -rf "$dl"; return 1; }
    for f in $SRCS; do
      [ -f "$KSRC/$f" ] && continue
      [ -s "$dl/$spkg/$f" ] || { log "$spkg $KPKGVER has no $f"; rm -rf "$dl"; return 1; }
      mkdir -p "$(dirname "$KSRC/$f")" && mv "$dl/$spkg/$f" "$KSRC/$f.tmp" && mv "$KSRC/$f.tmp" "$KSRC/$f" || { rm -rf "$dl"; return 1; }
    done
    rm -rf "$dl"
  fi
  return 0
}

# Fetches and unpacks image $1 at version $2 unless already there; .extracted holds the version.
fetch_kernel() {
  kv="${1#linux-image-}"
  kd="$CACHE/kernel-$kv"
  if [ -f "$kd/.extracted" ] && [ "$(cat "$kd/.extracted")" = "$2" ]; then return 0; fi
  rm -rf "$kd" "$CACHE/dl"
  mkdir -p "$CACHE/dl" "$kd"
  # (Called as an `if` condition, where set -e does not apply: every step is checked.)
  if (cd "$CACHE/dl" && apt-get $APT_OPTS download "$1=$2" >&2) && dpkg -x "$CACHE"/dl/*.deb "$kd" &&
    dpkg-deb -f "$CACHE"/dl/*.deb Version > "$kd/.version" && [ "$(cat "$kd/.version")" = "$2" ]; then
    mv "$kd/.version" "$kd/.extracted"
    rm -rf "$CACHE/dl"
    return 0
  fi
  rm -rf "$CACHE/dl" "$kd"
  return 1
}

set_kernel_vars() {
  KVER="$1"
  KDIR="$CACHE/kernel-$KVER"
  KPKGVER="$(cat "$KDIR/.extracted")"
  HEADERS="/usr/src/linux-headers-$KVER"
  KSRC="$KDIR/src"
}

# ---- the cached lab, if it still is the index's kernel ----------------------------------------------
INDEX="$(resolve_kpkg)"
if [ -f "$ENVFILE" ] && grep -q "^LAB_REV=$LAB_REV\$" "$ENVFILE"; then
  . "$ENVFILE"
  if [ -f "$KERNEL" ] && [ -f "$INITRD" ] && [ -d "$MODULES" ] && [ -s "$CACHE/kernel-$KVER/.extracted" ]; then
    set_kernel_vars "$KVER"
    # An unresolvable index (no lists at all) keeps the cache: nothing better is known.
    if [ -z "$INDEX" ] || [ "$INDEX" = "linux-image-$KVER $KPKGVER" ]; then
      if [ "$KBUILD" = 0 ] || kbuild_ready || kbuild_prepare; then
        echo "$ENVFILE"
        exit 0
      fi
      apt_update
      INDEX="$(resolve_kpkg)"
      [ "$INDEX" != "linux-image-$KVER $KPKGVER" ] || die "the archive's current kernel is still $KVER $KPKGVER, but it lacks its headers or source"
      log "the archive moved on from $KVER $KPKGVER: refreshing the lab to ${INDEX#linux-image-}"
    else
      log "the apt index moved from $KVER $KPKGVER to ${INDEX#linux-image-}: refreshing the lab"
    fi
  fi
fi

# ---- (re)build the lab for the index's kernel ------------------------------------------------------
if [ -z "$INDEX" ]; then apt_update; INDEX="$(resolve_kpkg)"; fi
[ -n "$INDEX" ] || die "cannot resolve the kernel package from linux-image-amd64"
if ! fetch_kernel $INDEX; then
  # A stale index names an image the mirror no longer has.
  apt_update
  INDEX="$(resolve_kpkg)"
  [ -n "$INDEX" ] || die "cannot resolve the kernel package from linux-image-amd64"
  fetch_kernel $INDEX || die "cannot download ${INDEX%% *} ${INDEX#* }"
fi
KPKG="${INDEX%% *}"
set_kernel_vars "${KPKG#linux-image-}"
log "kernel package $KPKG $KPKGVER"
if [ "$KBUILD" = 1 ] && ! kbuild_ready && ! kbuild_prepare; then
  die "the archive has $KPKG $KPKGVER but not linux-headers-$KVER or $(source_pkg "$KVER") at that version"
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
[ -s "$IRD/mods.list.host" ] || die "modprobe --show-depends found no modules"
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
KPKGVER=$KPKGVER
KERNEL=$KDIR/boot/vmlinuz-$KVER
INITRD=$CACHE/initramfs.cpio.gz
MODULES=$MODROOT/lib/modules
HEADERS=$HEADERS
KSRC=$KSRC
EOF
mv "$ENVFILE.tmp" "$ENVFILE"
# Kernels of earlier ABIs are not booted any more (~400 MB each), nor built for (~65 MB of headers).
for d in "$CACHE"/kernel-*; do
  [ "$d" = "$KDIR" ] || [ ! -d "$d" ] || { log "removing $d"; rm -rf "$d"; }
done
if [ -f "$CACHE/headers.installed" ]; then
  for k in $(cat "$CACHE/headers.installed"); do
    [ "$k" != "$KVER" ] || continue
    if [ -n "$(installed_version "linux-headers-$k")" ]; then
      log "removing linux-headers-$k"
      apt-get $APT_OPTS purge -y -qq "linux-headers-$k" "linux-headers-${k%-amd64}-common" >&2 || log "could not remove linux-headers-$k"
    fi
  done
  grep -x "$KVER" "$CACHE/headers.installed" > "$CACHE/headers.installed.tmp" || true
  mv "$CACHE/headers.installed.tmp" "$CACHE/headers.installed"
fi
log "ready: kernel $KVER ($KPKGVER)"
echo "$ENVFILE"
