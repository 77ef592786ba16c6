#!/bin/sh
# keepalived's notify script on a director pair: turns this node's ssyncd into the master when it
# takes the addresses, and into a backup of the peer otherwise.
# Usage (keepalived appends the last four): pair-notify.sh <peer address> INSTANCE <name> <state> <priority>
#
# The tables need no copying here: the backup ssyncd runs with tables_apply and overrides_apply
# continuous, so the replicated xt_recent lists, nftables maps and operator overrides are already in
# this node's kernel and surealived when it takes over, and the takeover is one command. Unlike
# Zevenet's sequence (write, quit, start a new daemon) the role changes in place: the copy is never
# dropped and no packet races a restart. (With tables_apply on-write, set WRITE_FIRST=yes.)
PEER="$1"
STATE="$4"
CTL="ssyncdctl -s /run/ssyncd/ssyncd.sock"
PORT=7777
WRITE_FIRST=no
LOG=/var/log/surealived/pair-notify.log

# keepalived may start two notifications close together: one at a time, in order. (A failed
# redirection on `exec` would end the script: make sure the directories exist.)
mkdir -p /run/ssyncd /var/log/surealived
exec 9>/run/ssyncd/pair-notify.lock
flock 9

say() { echo "$(date '+%F %T') $*" >> "$LOG"; }
say "state $STATE (peer $PEER)"
case "$STATE" in
  MASTER)
    if [ "$WRITE_FIRST" = yes ]; then
      for what in recent nft overrides; do
        out="$($CTL write $what 2>&1)" || say "write $what: $out"
      done
    fi
    out="$($CTL switch master port $PORT 2>&1)"; say "switch master: $out"
    ;;
  BACKUP|FAULT)
    out="$($CTL switch backup address $PEER port $PORT 2>&1)"; say "switch backup: $out"
    ;;
  *) ;;
esac
exit 0
