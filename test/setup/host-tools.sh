#!/bin/sh
# Installs the Debian packages host-side tests drive. Default: what the session-sync tests need
# (iptables for `-m recent`, nftables for `nft`, iproute2 for network namespaces, openssl for test
# certificates); the status page and example tests name theirs (chromium, prometheus for promtool).
# Idempotent and serialised on a lock file; waits for another apt/dpkg instead of failing on its lock;
# prints nothing on stdout when everything is already there. Usage: host-tools.sh [package...]
set -eu
CACHE="${SUREALIVED_CACHE:-${HOME:-/root}/.cache/surealived-ts}"
mkdir -p "$CACHE"
exec 9>"$CACHE/.host-tools.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
want="${*:-iptables nftables iproute2 openssl}"
need=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need="$need $p"
done
[ -z "$need" ] && exit 0
echo "host-tools: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
APT="apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends"
$APT $need >&2 || {
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  $APT $need >&2
}
