// The process's descriptor limit and use, read from /proc (Node has no getrlimit); the arithmetic
// is in engine/descriptor-budget.ts.

import { readFileSync, readdirSync } from 'node:fs';
import { parseNofileLimit, type NofileLimit } from './engine/descriptor-budget.js';

/** RLIMIT_NOFILE of this process, or undefined where /proc is not available. */
export function readNofileLimit(pid: number | 'self' = 'self'): NofileLimit | undefined {
  try {
    return parseNofileLimit(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  } catch {
    return undefined;
  }
}

/** Descriptors open in this process now (the directory listing's own descriptor not counted). */
export function openDescriptorCount(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return undefined;
  }
}
