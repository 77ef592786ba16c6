// Shared-key authentication: challenge-response on the two HELLO nonces, then a MAC on every frame
// keyed per direction and bound to an implicit sequence number, so a recorded frame cannot be
// replayed, reordered or injected. HMAC-SHA256 throughout (node:crypto).

import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';

const LABEL = 'ssyncd-ts v1';

/** The smallest key we accept: shorter secrets are guessable offline from one recorded handshake. */
export const MIN_KEY_BYTES = 16;

function hmac(key: Buffer, ...parts: (string | Buffer)[]): Buffer {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** The backup's answer to the master's challenge. */
export function backupProof(key: Buffer, masterNonce: Buffer, backupNonce: Buffer): Buffer {
  return hmac(key, LABEL, ' backup proof', masterNonce, backupNonce);
}

/** The master's proof back, so a backup never takes state from an impostor either. */
export function masterProof(key: Buffer, masterNonce: Buffer, backupNonce: Buffer): Buffer {
  return hmac(key, LABEL, ' master proof', backupNonce, masterNonce);
}

export function proofMatches(expected: Buffer, got: Buffer): boolean {
  return expected.length === got.length && timingSafeEqual(expected, got);
}

/** Per-direction frame keys of one connection. */
export function sessionKeys(key: Buffer, masterNonce: Buffer, backupNonce: Buffer): { toBackup: Buffer; toMaster: Buffer } {
  return {
    toBackup: hmac(key, LABEL, ' master to backup', masterNonce, backupNonce),
    toMaster: hmac(key, LABEL, ' backup to master', masterNonce, backupNonce),
  };
}

/** MAC of frame number `seq` (header and payload). */
export function frameMac(key: Buffer, seq: number, header: Buffer, payload: Buffer): Buffer {
  const s = Buffer.allocUnsafe(8);
  s.writeUIntBE(Math.floor(seq / 2 ** 48), 0, 2);
  s.writeUIntBE(seq % 2 ** 48, 2, 6);
  return createHmac('sha256', key).update(s).update(header).update(payload).digest();
}

export class KeyFileError extends Error {
  override readonly name = 'KeyFileError';
}

/**
 * Reads a key file: its bytes with surrounding whitespace trimmed (so `openssl rand -hex 32 > key`
 * works). It must not be readable by group or others, and must hold at least MIN_KEY_BYTES.
 */
export function readKeyFile(path: string): Buffer {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw new KeyFileError(`key file ${path}: ${(e as Error).message}`);
  }
  if (!st.isFile()) throw new KeyFileError(`key file ${path}: not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new KeyFileError(`key file ${path}: mode ${(st.mode & 0o777).toString(8)} lets others read it; chmod 600`);
  }
  const raw = readFileSync(path);
  let a = 0;
  let b = raw.length;
  while (a < b && /\s/.test(String.fromCharCode(raw[a]!))) a++;
  while (b > a && /\s/.test(String.fromCharCode(raw[b - 1]!))) b--;
  const key = raw.subarray(a, b);
  if (key.length < MIN_KEY_BYTES) throw new KeyFileError(`key file ${path}: ${key.length} bytes, at least ${MIN_KEY_BYTES} needed`);
  return Buffer.from(key);
}
