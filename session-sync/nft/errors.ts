// The one error type of the nft library: says which set (or which request) and why, with the
// kernel's errno name when the kernel refused.

import { getSystemErrorMap } from 'node:util';
import { tableLabel, type TableRef } from '../model.js';

export type NftErrorCode =
  /** The table or set does not exist. */
  | 'no-such-set'
  /** The set exists but its type cannot be replicated (see classifySet). */
  | 'unsupported'
  /** The entries do not fit the set (key family, data type, timeouts). */
  | 'mismatch'
  /** The transaction does not fit in one netlink datagram on this host. */
  | 'too-large'
  /** The kernel answered with an error. */
  | 'kernel'
  /** The socket failed (send error, overflow, unparsable reply). */
  | 'transport'
  | 'timeout'
  | 'closed'
  /** poll() while the previous poll of the same poller is still running. */
  | 'busy';

export class NftError extends Error {
  override readonly name = 'NftError';
  constructor(
    readonly code: NftErrorCode,
    /** What was being done, e.g. `nft inet lb persist4: writing 3 elements`. */
    readonly where: string,
    readonly why: string,
    /** Kernel errno (positive) when the kernel refused; 0 otherwise. */
    readonly errno = 0,
  ) {
    super(`${where}: ${why}`);
  }
}

let errnoMap: Map<number, [string, string]> | undefined;

/** `ENOENT (no such file or directory)`. */
export function errnoText(errno: number): string {
  errnoMap ??= getSystemErrorMap();
  const e = errnoMap.get(-errno);
  return e ? `${e[0]} (${e[1]})` : `errno ${errno}`;
}

/** `nft inet lb persist4`: how errors name a set. */
export function setLabel(ref: TableRef): string {
  return `nft ${tableLabel(ref)}`;
}
