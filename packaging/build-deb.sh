#!/bin/sh
# Builds surealived-ts_<version>_amd64.deb from this checkout (`npm run package`), then runs lintian on it.
# Production dependencies only, installed from the lockfile into a staging dir; the native modules are
# compiled there with Debian's hardening flags against the installed Node's headers; man pages are
# turned from man/*.scd into roff by scdoc. The build tools (scdoc, lintian) come from Debian's archive
# and are installed with apt-get when missing.
#
#   packaging/build-deb.sh [--out DIR] [--no-lint]
#
# Prints the path of the .deb on its last line.
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
OUT="$REPO"
LINT=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --no-lint) LINT=0; shift ;;
    *) echo "usage: $0 [--out DIR] [--no-lint]" >&2; exit 2 ;;
  esac
done

log() { echo "package: $*" >&2; }
die() { log "$*"; exit 1; }

PKG=surealived-ts
VERSION="$(node -p "require('$REPO/package.json').version")"
ARCH="$(dpkg --print-architecture)"
[ "$ARCH" = amd64 ] || die "builds amd64 only (this machine is $ARCH)"
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
LIBDIR=/usr/lib/$PKG

export DEBIAN_FRONTEND=noninteractive
APT_OPTS="-o DPkg::Lock::Timeout=300"
need=""
for tool in scdoc:scdoc lintian:lintian dpkg-shlibdeps:dpkg-dev fakeroot:fakeroot; do
  [ "$LINT" = 0 ] && [ "${tool%%:*}" = lintian ] && continue
  command -v "${tool%%:*}" >/dev/null 2>&1 || need="$need ${tool#*:}"
done
if [ -n "$need" ]; then
  [ "$(id -u)" = 0 ] || die "missing$need: install them (apt-get install$need) or run as root"
  log "installing$need from Debian"
  apt-get $APT_OPTS update -qq >&2
  apt-get $APT_OPTS install -y -qq --no-install-recommends $need >&2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/$PKG-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
APP="$ROOT$LIBDIR"
mkdir -p "$APP"

# --- 1. the program: compiled JavaScript of the shipped folders, native addons, production modules ---
log "compiling TypeScript"
( cd "$REPO" && npx --no-install tsc -p . --outDir "$WORK/dist" --sourceMap false ) >&2
mkdir -p "$APP/dist"
for d in common surealived testers ipvssync ipvs-netlink session-sync ssyncd ssyncdctl; do
  cp -r "$WORK/dist/$d" "$APP/dist/$d"
done
# Each program's interpreter line carries its Node options; the /usr/sbin wrappers run node with them,
# so the line becomes a comment (keeping line numbers) and the modules are plain, non-executable files.
for p in surealived ipvssync ssyncd ssyncdctl; do
  sed -i '1s|^#!.*|// interpreter line: see /usr/sbin/'"$p"'|' "$APP/dist/$p/cli.js"
done

BUILD="$WORK/npm"
mkdir -p "$BUILD/testers/native" "$BUILD/common/native"
cp "$REPO/package.json" "$REPO/package-lock.json" "$REPO/binding.gyp" "$BUILD/"
cp "$REPO"/testers/native/*.c "$BUILD/testers/native/"
cp "$REPO"/common/native/*.c "$BUILD/common/native/"

# Hardened native code, built against the installed Node's own headers (nothing from ~/.cache/node-gyp).
eval "$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --export=sh)"
export CFLAGS CXXFLAGS LDFLAGS CPPFLAGS
[ -f /usr/include/node/node_api.h ] && export npm_config_nodedir=/usr
export npm_config_build_from_source=true npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
log "npm ci --omit=dev (production dependencies, native modules built from source)"
# --ignore-scripts: the root's `prepare` (tsc) needs the dev dependencies; the addons are built next,
# `npm run install` being the root's own `node-gyp rebuild` with npm's bundled node-gyp.
( cd "$BUILD" && npm ci --omit=dev --ignore-scripts >&2 && npm rebuild >&2 && npm run install >&2 )
mkdir -p "$APP/build/Release"
cp "$BUILD/build/Release/prober.node" "$BUILD/build/Release/peercred.node" "$APP/build/Release/"
cp -r "$BUILD/node_modules" "$APP/node_modules"
cp "$REPO/package.json" "$APP/package.json"

# Prune: build trees (they hold absolute build paths), prebuilt binaries (ours are built above),
# sources, tests and docs that the programs never load.
NM="$APP/node_modules"
find "$NM" -type d \( -name obj.target -o -name .deps -o -name prebuilds -o -name test -o -name tests \
  -o -name .github -o -name example -o -name examples -o -name docs \) -prune -exec rm -rf {} +
find "$NM" -path '*/build/*' -type f ! -name '*.node' -delete
find "$NM" -type f \( -name '*.md' -o -name '*.markdown' -o -name '*.map' -o -name '*.ts' -o -name '*.cc' \
  -o -name '*.c' -o -name '*.h' -o -name '*.gyp' -o -name '*.gypi' -o -name 'Makefile' -o -name '.npmignore' \
  -o -name '.eslintrc*' -o -name '.travis.yml' -o -name 'appveyor.yml' -o -name '.package-lock.json' \
  -o -name wscript -o -name '*.sh' \) -delete
# Build-time only: headers (nan, node-addon-api), typings, node-gyp-build's command-line tools.
rm -rf "$NM/.bin" "$NM/nan" "$NM/node-addon-api" "$NM/@types" \
  "$NM/node-gyp-build/bin.js" "$NM/node-gyp-build/build-test.js" "$NM/node-gyp-build/optional.js" \
  "$NM/fast-xml-parser/src/cli"
find "$NM" -depth -type d -empty -delete
# Built addons must be there: the programs load them by these paths.
[ -f "$NM/fs-ext/build/Release/fs_ext.node" ] || die "fs-ext addon was not built"
ls "$NM"/netlink/build/Release/*.node >/dev/null 2>&1 || die "netlink addon was not built"
find "$APP" -name '*.node' -exec strip --strip-unneeded --remove-section=.comment --remove-section=.note {} +
find "$APP" -type d -exec chmod 755 {} +
find "$APP" -type f -exec chmod 644 {} +

# --- 2. wrappers on the PATH ---
mkdir -p "$ROOT/usr/sbin"
for p in surealived ipvssync ssyncd ssyncdctl; do
  opts="$(sed -n '1s|^#!/usr/bin/env -S node||p;1s|^#!/usr/bin/env node||p' "$REPO/$p/cli.ts")"
  cat > "$ROOT/usr/sbin/$p" <<EOF
#!/bin/sh
# $p, from $PKG: runs the program with the Node options of its interpreter line.
exec /usr/bin/node$opts $LIBDIR/dist/$p/cli.js "\$@"
EOF
  chmod 755 "$ROOT/usr/sbin/$p"
done

# --- 3. configuration, units, logrotate, man pages, docs, state directories ---
install -D -m 644 "$HERE/etc/surealived.cfg" "$ROOT/etc/surealived/surealived.cfg"
install -D -m 644 "$HERE/etc/surealived.xml" "$ROOT/etc/surealived/surealived.xml"
install -D -m 644 "$HERE/etc/ssyncd.cfg" "$ROOT/etc/ssyncd/ssyncd.cfg"
install -D -m 644 "$HERE/etc/default-ssyncd" "$ROOT/etc/default/ssyncd"
install -D -m 644 "$HERE/etc/logrotate" "$ROOT/etc/logrotate.d/$PKG"
for u in "$HERE"/systemd/*.service; do
  install -D -m 644 "$u" "$ROOT/lib/systemd/system/$(basename "$u")"
done
for src in "$REPO"/man/*.scd; do
  name="$(basename "$src" .scd)"          # e.g. surealived.cfg.5
  sec="${name##*.}"
  mkdir -p "$ROOT/usr/share/man/man$sec"
  scdoc < "$src" > "$ROOT/usr/share/man/man$sec/$name"
  gzip -9n "$ROOT/usr/share/man/man$sec/$name"
done
DOC="$ROOT/usr/share/doc/$PKG"
install -D -m 644 "$HERE/debian/copyright" "$DOC/copyright"
# Dated by the checkout's last commit, so the same checkout gives the same package.
DATE="$(cd "$REPO" && git log -1 --format=%aD 2>/dev/null || date -R)"
sed -e "s|@VERSION@|$VERSION|" -e "s|@DATE@|$DATE|" "$HERE/debian/changelog.in" | gzip -9n > "$DOC/changelog.gz"
gzip -9n < "$REPO/README.md" > "$DOC/README.md.gz"
mkdir -p "$DOC/examples"
cp "$REPO"/examples/director-pair/* "$DOC/examples/"
chmod 644 "$DOC"/examples/*
mkdir -p "$ROOT/var/lib/surealived/diffs" "$ROOT/var/lib/surealived/stats" \
  "$ROOT/var/log/surealived/comm" "$ROOT/var/log/surealived/stats" "$ROOT/usr/lib/surealived/modules"
find "$ROOT" -type d -exec chmod 755 {} +

# --- 4. control files ---
DEB="$ROOT/DEBIAN"
mkdir -p "$DEB"
for s in postinst prerm postrm; do install -m 755 "$HERE/debian/$s" "$DEB/$s"; done
( cd "$ROOT" && find etc -type f | sed 's|^|/|' | sort ) > "$DEB/conffiles"
# Shared-library dependencies of the addons, as dpkg-shlibdeps finds them.
mkdir -p "$WORK/shlib/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PKG" "$PKG" > "$WORK/shlib/debian/control"
SHLIBS="$(cd "$WORK/shlib" && find "$APP" -name '*.node' -exec dpkg-shlibdeps -O {} + 2>/dev/null | sed -n 's/^shlibs:Depends=//p')"
[ -n "$SHLIBS" ] || die "dpkg-shlibdeps found no dependency for the addons"
SIZE="$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)"
# fs-ext is a NAN addon: its binary only loads in the Node major it was built for.
sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$ARCH|" -e "s|@SIZE@|$SIZE|" -e "s|@SHLIBS@|$SHLIBS|" \
    -e "s|@NODE_MAJOR@|$NODE_MAJOR|g" -e "s|@NODE_NEXT@|$((NODE_MAJOR + 1))|g" \
    "$HERE/debian/control.in" > "$DEB/control"
( cd "$ROOT" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum ) > "$DEB/md5sums"
chmod 644 "$DEB/control" "$DEB/conffiles" "$DEB/md5sums"

mkdir -p "$OUT"
DEBFILE="$OUT/${PKG}_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEBFILE" >&2

if [ "$LINT" = 1 ]; then
  log "lintian $DEBFILE"
  # Errors fail the build; warnings are printed (the README lists the ones that remain, and why).
  lintian --fail-on error --tag-display-limit 0 "$DEBFILE" >&2 || die "lintian reported errors"
fi
echo "$DEBFILE"
