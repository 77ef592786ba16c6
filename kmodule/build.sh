#!/bin/sh
# Builds the patched xt_recent.ko for the kernel the qemu lab boots: Debian's upstream
# net/netfilter/xt_recent.c of the lab image's exact version + xt_recent.patch, against the headers of
# that same version (lab/setup.sh --kbuild fetches both and keeps the lab and them a matching pair).
# Prints the module's path on stdout and copies it to kmodule/build/xt_recent.ko.
#
# Cached on (kernel, headers version, gcc-12 version, hashes of the patch, the upstream file and
# Kbuild): a warm run only hashes. Entry points: `npm run build:kmodule`, `make -C kmodule`.
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
UPSTREAM=net/netfilter/xt_recent.c

log() { echo "kmodule/build: $*" >&2; }
die() { log "$*"; exit 1; }

ENVFILE="$(sh "$REPO/lab/setup.sh" --kbuild "$UPSTREAM" | tail -n1)"
[ -f "$ENVFILE" ] || die "lab/setup.sh --kbuild gave no env file"
. "$ENVFILE"
export PATH="$PATH:/sbin:/usr/sbin"
export LC_ALL=C

CACHE="$(dirname "$ENVFILE")/kmodule"
mkdir -p "$CACHE"
exec 8>"$CACHE/.lock"
if command -v flock >/dev/null 2>&1; then flock 8; fi

HV="$(dpkg-query -W -f='${Version}' "linux-headers-$KVER")"
[ "$HV" = "$KPKGVER" ] || die "linux-headers-$KVER $HV does not match the lab kernel's $KPKGVER"
GCCV="$(dpkg-query -W -f='${Version}' gcc-12)"
sum() { sha256sum < "$1" | cut -d' ' -f1; }
KEY="$(printf '%s\n' "$KVER" "$HV" "$GCCV" "$(sum "$HERE/xt_recent.patch")" "$(sum "$KSRC/$UPSTREAM")" "$(sum "$HERE/Kbuild")" \
  | sha256sum | cut -c1-16)"
OUTDIR="$CACHE/$KVER-$KEY"
KO="$OUTDIR/xt_recent.ko"
STOCK="$MODULES/$KVER/kernel/net/netfilter/xt_recent.ko"

if [ -f "$KO" ]; then
  log "cached: $KO"
else
  WORK="$(mktemp -d "$CACHE/work.XXXXXX")"
  trap 'rm -rf "$WORK"' EXIT
  mkdir -p "$WORK/net/netfilter"
  cp "$KSRC/$UPSTREAM" "$WORK/$UPSTREAM"
  patch -d "$WORK" -p1 --fuzz=0 --no-backup-if-mismatch --quiet < "$HERE/xt_recent.patch" \
    || die "xt_recent.patch does not apply to $UPSTREAM of linux-source $KPKGVER"
  cp "$HERE/Kbuild" "$WORK/net/netfilter/Kbuild"
  log "building for $KVER (headers $HV, gcc-12 $GCCV)"
  make -C "$HEADERS" M="$WORK/net/netfilter" modules > "$WORK/build.log" 2>&1 \
    || { cat "$WORK/build.log" >&2; die "build failed"; }
  built="$WORK/net/netfilter/xt_recent.ko"
  # 600 kB of DWARF otherwise (CONFIG_DEBUG_INFO); the stock module is stripped too.
  strip --strip-debug "$built"

  # The pair checked without booting: the lab kernel's own xt_recent has the same vermagic, and every
  # symbol both modules import has the same CRC (modversions).
  want="$(modinfo -F vermagic "$STOCK")"
  got="$(modinfo -F vermagic "$built")"
  [ "$got" = "$want" ] || die "vermagic '$got' differs from the lab kernel's '$want'"
  modprobe --dump-modversions "$STOCK" | sort -k2 > "$WORK/stock.crc"
  modprobe --dump-modversions "$built" | sort -k2 > "$WORK/ours.crc"
  [ -s "$WORK/ours.crc" ] || die "the built module has no modversions"
  bad="$(join -j 2 "$WORK/stock.crc" "$WORK/ours.crc" | awk '$2 != $3 { print $1 }')"
  [ -z "$bad" ] || die "symbol CRCs differ from the lab kernel's: $bad"
  modinfo -F version "$built" | grep -q '^surealived-[0-9][0-9]*$' || die "the built module carries no surealived version"

  rm -rf "$OUTDIR.tmp"
  mkdir -p "$OUTDIR.tmp"
  cp "$built" "$OUTDIR.tmp/xt_recent.ko"
  cp "$WORK/build.log" "$OUTDIR.tmp/build.log"
  rm -rf "$OUTDIR"
  mv "$OUTDIR.tmp" "$OUTDIR"
  # Builds for other kernels or other patches are not loaded any more.
  for d in "$CACHE"/[0-9]*-*; do
    [ "$d" = "$OUTDIR" ] || [ ! -d "$d" ] || rm -rf "$d"
  done
  log "built: $KO ($(modinfo -F version "$KO"), $(wc -c < "$KO") bytes)"
fi

if mkdir -p "$HERE/build" 2>/dev/null && cp "$KO" "$HERE/build/.xt_recent.ko.tmp" 2>/dev/null; then
  mv "$HERE/build/.xt_recent.ko.tmp" "$HERE/build/xt_recent.ko"
else
  log "note: cannot copy the module into $HERE/build (read-only checkout?)"
fi
echo "$KO"
