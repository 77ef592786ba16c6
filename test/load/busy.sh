#!/usr/bin/env bash
# busy.sh: runs tests on a busy machine, to show that their timing claims hold under contention
# (issue 14): CPU-, memory- and fsync-heavy load from Debian's stress-ng on top of whatever else runs.
#
# Usage (from the repository root, after `npm run build`):
#   test/load/busy.sh run CMD [ARG...]     run CMD under load; exits with CMD's status
#   test/load/busy.sh repeat N FILE...     run `npx mocha --no-exit FILE...` N times under load, one
#                                          load for all runs; prints a pass/fail tally per run and
#                                          exits non-zero unless every run was green
# e.g.
#   test/load/busy.sh repeat 3 dist/test/testers/*.test.js dist/test/engine/*.test.js
#   test/load/busy.sh run npx mocha --no-exit dist/test/testers/http.test.js
#
# The load (per run of this script, stopped on exit, Ctrl-C or TERM by a trap):
#   --cpu 2                 both cores of the 2-core machines the project runs on, busy
#   --vm 1                  one worker writing and re-reading memory: BUSY_VM_BYTES (default: a quarter
#                           of the RAM, and never more than MemAvailable less BUSY_RESERVE_MB, default
#                           4096; refused below 256 MB), so the load cannot run the machine out of
#                           memory (there is no swap)
#   --hdd 1 --hdd-opts fsync  one worker writing BUSY_HDD_BYTES (default 256M) with an fsync per write,
#                           in a temporary directory removed afterwards
#   --io 1                  one worker calling sync() in a loop
# BUSY_STRESS replaces all of the above with your own stress-ng arguments. stress-ng also gets a
# --timeout (BUSY_MAX_SECONDS, default 3600) so the load ends by itself even if this script is
# SIGKILLed. Logs of each repeat run are kept in BUSY_LOG_DIR (default: a new directory under /tmp).
# stress-ng is installed (if missing) through test/setup/host-tools.sh.
set -u

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

usage() {
  sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
mode="$1"
shift

sh "$root/test/setup/host-tools.sh" stress-ng || {
  echo "busy: cannot install stress-ng" >&2
  exit 1
}

stress_pid=""
tmp=""

stop_load() {
  if [ -n "$stress_pid" ] && kill -0 "$stress_pid" 2>/dev/null; then
    # stress-ng runs in its own session (setsid): TERM the whole group, then KILL what is left.
    kill -TERM -- "-$stress_pid" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$stress_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$stress_pid" 2>/dev/null
    wait "$stress_pid" 2>/dev/null
    echo "busy: load stopped" >&2
  fi
  stress_pid=""
  if [ -n "$tmp" ]; then rm -rf "$tmp"; fi
  tmp=""
}
trap stop_load EXIT
trap 'stop_load; exit 130' INT
trap 'stop_load; exit 143' TERM

start_load() {
  local total_kb avail_kb reserve_kb vm_kb
  total_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
  avail_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo)
  reserve_kb=$(( ${BUSY_RESERVE_MB:-4096} * 1024 ))
  if [ -n "${BUSY_VM_BYTES:-}" ]; then
    vm_arg="$BUSY_VM_BYTES"
  else
    vm_kb=$(( total_kb / 4 ))
    [ $(( avail_kb - reserve_kb )) -lt "$vm_kb" ] && vm_kb=$(( avail_kb - reserve_kb ))
    if [ "$vm_kb" -lt $(( 256 * 1024 )) ]; then
      echo "busy: only $(( avail_kb / 1024 )) MB available; not adding memory load (needs ${BUSY_RESERVE_MB:-4096} MB spare + 256 MB)" >&2
      exit 1
    fi
    vm_arg="${vm_kb}K"
  fi
  tmp="$(mktemp -d /tmp/busy-load.XXXXXX)"
  local args
  if [ -n "${BUSY_STRESS:-}" ]; then
    # shellcheck disable=SC2206 # word splitting is the point
    args=($BUSY_STRESS)
  else
    args=(--cpu 2 --vm 1 --vm-bytes "$vm_arg" --hdd 1 --hdd-opts fsync --hdd-bytes "${BUSY_HDD_BYTES:-256M}" --io 1)
  fi
  echo "busy: stress-ng ${args[*]} (for at most ${BUSY_MAX_SECONDS:-3600} s)" >&2
  # Its own output (a warning per worker when it is stopped early, as it always is here) goes to a file.
  (cd "$tmp" && exec setsid stress-ng "${args[@]}" --temp-path "$tmp" --timeout "${BUSY_MAX_SECONDS:-3600}" --quiet >"$tmp/stress-ng.log" 2>&1) &
  stress_pid=$!
  # Let the workers start and the memory worker map its memory before timing anything.
  sleep 3
  if ! kill -0 "$stress_pid" 2>/dev/null; then
    echo "busy: stress-ng did not start:" >&2
    cat "$tmp/stress-ng.log" >&2
    stress_pid=""
    exit 1
  fi
  echo "busy: load running (pid $stress_pid; load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
}

case "$mode" in
  run)
    [ $# -ge 1 ] || usage
    start_load
    "$@"
    rc=$?
    stop_load
    exit "$rc"
    ;;
  repeat)
    [ $# -ge 2 ] || usage
    runs="$1"
    shift
    case "$runs" in '' | *[!0-9]*) usage ;; esac
    logs="${BUSY_LOG_DIR:-$(mktemp -d /tmp/busy-runs.XXXXXX)}"
    mkdir -p "$logs"
    start_load
    green=0
    cd "$root" || exit 1
    for i in $(seq 1 "$runs"); do
      log="$logs/run-$i.log"
      t0=$(date +%s)
      npx mocha --no-exit "$@" >"$log" 2>&1
      rc=$?
      t1=$(date +%s)
      passed=$(grep -Eo '^ +[0-9]+ passing' "$log" | tail -1 | grep -Eo '[0-9]+' || true)
      failed=$(grep -Eo '^ +[0-9]+ failing' "$log" | tail -1 | grep -Eo '[0-9]+' || true)
      pending=$(grep -Eo '^ +[0-9]+ pending' "$log" | tail -1 | grep -Eo '[0-9]+' || true)
      passed=${passed:-0}
      failed=${failed:-0}
      pending=${pending:-0}
      [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
      echo "run $i/$runs: $passed passed, $failed failed, $pending pending ($(( t1 - t0 )) s, exit $rc, load average $(cut -d' ' -f1 /proc/loadavg), log $log)"
      if [ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]; then
        green=$(( green + 1 ))
      else
        # What failed: mocha's numbered list after "N failing", each suite line with its test's title
        # and the first line of the error.
        awk '/^ +[0-9]+ failing/ { on = 1; next }
             on && /^ +[0-9]+\) / { n = 3 }
             on && n > 0 && NF > 0 { print "    " $0; n-- }' "$log"
      fi
    done
    stop_load
    echo "busy: $green of $runs runs green"
    [ "$green" -eq "$runs" ]
    ;;
  *)
    usage
    ;;
esac
