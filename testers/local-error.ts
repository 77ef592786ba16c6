// Which probe errors are the director's own shortage rather than the real's answer: a socket that
// cannot be opened (EMFILE), a kernel out of buffers, no local port left, a fork that fails. Such a
// probe says nothing about the real, so it must not count towards the real's retries.

import type { LocalErrno, ProbeResult } from './contract.js';

/** Where the error came from: opening/using a socket, or starting a process (exec tester). */
export type LocalErrorSite = 'socket' | 'spawn';

// EADDRNOTAVAIL on connect() is "no free local port"; EAGAIN from fork/spawn is "too many processes".
// ENOENT/EACCES of a spawn stay verdicts: the program is missing for every real alike, a config fault.
const SOCKET_LOCAL: ReadonlySet<string> = new Set<LocalErrno>(['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL']);
const SPAWN_LOCAL: ReadonlySet<string> = new Set<LocalErrno>(['EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN']);

/** The errno name when `code` is a local shortage at `site`, else undefined. */
export function localErrno(code: string | undefined, site: LocalErrorSite): LocalErrno | undefined {
  if (code === undefined) return undefined;
  return (site === 'socket' ? SOCKET_LOCAL : SPAWN_LOCAL).has(code) ? (code as LocalErrno) : undefined;
}

/** The result of a probe that could not run: failed, but flagged so the engine does not judge it. */
export function localResult(errno: LocalErrno, what: string): ProbeResult {
  return { ok: false, detail: `${what}: ${errno} on the director, not a verdict on the real`, local: errno };
}
