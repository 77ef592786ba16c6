// The checks the guest-side kmodule script runs, by id, shared with the host test so that it can declare
// one mocha `it` per check before the guest has run (and notice a check that never reported).

import type { GuestCheckReport, GuestCheckResult } from './report.js';

export const KMODULE_CHECKS = {
  'module.ours': 'the loaded xt_recent is the one just built: /sys/module/xt_recent/version is surealived-1, srcversion equals the .ko file\'s, taint O',
  'upstream.ours': 'upstream "+addr", "-addr", "/" (and their odd inputs) give the results upstream documents',
  'absolute.roundtrip': '"*addr;ttl;stamps;" lines come back exactly through /proc (ttl, every stamp, order, oldest_pkt), with ";", "\\n" and NUL endings, and a /proc line rewritten as "*" reproduces itself',
  'relative.ages': '"=addr;ttl;ages;" stamps land within one jiffy of jiffies-at-write minus each age (0 ms to 30 days)',
  'ipv6': 'IPv6 entries (full, compressed, v4-mapped) through both forms, printed expanded, in an ip6tables table',
  'merge.replace': 'a line on an existing address replaces its ttl and stamps (no extra entry, no extra hit); the same line twice changes nothing',
  'merge.lru': 'a restored entry becomes the most recently used: in a full table the next new address evicts another entry',
  'ring.cap': 'more stamps than the table\'s ring keep the newest that fit (32, 128, and 255 for a 256-ring)',
  'match.hitcount': 'real packets from a namespace: --rcheck --seconds N [--hitcount H] decide alike for packet-made, relative-restored and absolute-restored entries, and as the stamps say',
  'match.rttl': '--rcheck --rttl matches a restored entry whose ttl is the packet\'s and not one whose ttl differs',
  'match.ipv6': 'ip6tables --rcheck --seconds/--hitcount decide alike for a packet-made and a restored IPv6 entry',
  'protocol.espipe': 'a second restore write on the same descriptor gets ESPIPE; after lseek(0) it is taken',
  'malformed.einval': 'every line of the malformed corpus (>= 50: too long, no NUL/no ";", bad address, bad numbers, too many stamps, empty fields, ttl > 255, future stamps) gets EINVAL and leaves the tables unchanged',
  'malformed.quiet': 'after the corpus dmesg shows no warning, oops or BUG, the kernel taint is unchanged, and xt_recent logged nothing',
  'ssyncd.e2e': 'ssyncd master and backup in two namespaces: the backup\'s `write recent` restores the master\'s tables (IPv4 and IPv6) with ttl, hit count and every hit\'s age preserved',
  'module.still-ours': 'at the end of the run the loaded module is still ours (nothing swapped in the stock one)',
  'upstream.stock-equal': 'the stock module, loaded afterwards, gives exactly the same results for the upstream command corpus',
} as const;

export type KmoduleCheckId = keyof typeof KMODULE_CHECKS;

export type KmoduleCheckResult = GuestCheckResult<KmoduleCheckId>;
export type KmoduleReport = GuestCheckReport<KmoduleCheckId>;
