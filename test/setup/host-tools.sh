#!/bin/sh
# Installs the Debian packages the host-side session-sync tests drive (iptables for `-m recent`,
# nftables for `nft`, iproute2 for network namespaces, openssl for test certificates). Idempotent and serialised on a lock file;
# prints nothing on stdout when everything is already there.
set -eu
CACHE="${SUREALIVED_CACHE:-${HOME:-/root}/.cache/surealived-ts}"
mkdir -p "$CACHE"
exec 9>"$CACHE/.host-tools.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
need=""
for p in iptables nftables iproute2 openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || need="$need $p"
done
[ -z "$need" ] && exit 0
echo "host-tools: installing$need" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq --no-install-recommends $need >&2 || {
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends $need >&2
}
