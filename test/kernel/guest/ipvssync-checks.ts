// The checks the guest-side ipvssync script runs, by id, shared with the host test so that it can
// declare one mocha `it` per check before the guest has run (and notice a check that never reported).

import type { GuestCheckReport, GuestCheckResult } from './report.js';

export const IPVSSYNC_CHECKS = {
  'kill.partial': 'ipvssync SIGKILLed in the middle of the full sync of a 500 x 20 hand-off leaves a partial table',
  'kill.converge': 'restarted, it converges to exactly the desired table (full file + a two-file diff chain), netlink dump',
  'kill.ipvsadm': 'after the restart `ipvsadm -Sn` shows exactly the desired table too',
  'list': '`ipvssync --list` prints exactly what `ipvsadm -Ln` prints, row for row (10,500 rows)',
  'diff.tail': 'diff lines appended while it runs (chgreal, delreal, addreal) reach the kernel',
  'diff.burst': 'diff lines written in quick succession while passes run (torn mid-line, the same real changed again and again) all reach the kernel, the last write winning',
  'unmanaged.kept': 'without -u a service added by hand with ipvsadm is kept (and a managed service deleted by hand is restored)',
  'unmanaged.removed': 'with -u the hand-added service is removed and the table is exactly the desired one',
  'errors.logged': 'an unknown scheduler in the hand-off: the refused ops are logged at error level, the rest is applied',
  'errors.retried': 'refused ops are retried, not dropped: the error recurs, and a scheduler that becomes loadable gets its service and reals',
  'sd.start': 'surealived + ipvssync: every virtual and real of the XML (an IPv6 virtual too) reaches the kernel at its configured weight (ipvsadm and IpvsClient)',
  'sd.down': 'a real whose server stops goes to weight 0 (remove_on_fail=0) or is removed (remove_on_fail=1) in the kernel',
  'sd.up': 'when its server is back, the real gets its weight back / is added again in the kernel',
  'sd.rset.weight': '`rset ... rweight=N` and `rweight=N%` on the control port reach the kernel',
  'sd.rset.offline': '`rset ... rstate=OFFLINE` gives weight 0 in the kernel; DOWN removes the real; ONLINE restores it',
  'sd.edit': 'a scheduler and persistence change in the XML + SIGHUP to surealived edits the kernel service in place (ipvssync applied one edit per service, no delete and re-add)',
  'sd.ipv6': 'an IPv6 virtual goes through the v6 hand-off form (v6virtual/v6real, cmd=v6...): a real down, rset DOWN and ONLINE reach the kernel',
} as const;

export type IpvssyncCheckId = keyof typeof IPVSSYNC_CHECKS;

export type IpvssyncCheckResult = GuestCheckResult<IpvssyncCheckId>;
export type IpvssyncReport = GuestCheckReport<IpvssyncCheckId>;
