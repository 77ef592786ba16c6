// Test-side helpers for the nft library: a client for nft-harness.js running inside a namespace,
// and the elements of a set as `nft -j list` shows them (the reference the library is checked against).

import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { canonicalAddr, type Change, type NftEntry } from '../../session-sync/model.js';
import type { NftRef, NftSetSummary } from '../../session-sync/nft/sets.js';
import type { WriteResult } from '../../session-sync/nft/writer.js';
import type { Netns } from '../helpers/netns.js';
import type { HarnessReply, HarnessRequest } from './nft-harness.js';

const HARNESS = fileURLToPath(new URL('./nft-harness.js', import.meta.url));

/** An error the harness reported (an NftError carries its code and errno). */
export class HarnessError extends Error {
  override readonly name = 'HarnessError';
  constructor(
    readonly code: string | undefined,
    readonly errno: number | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The nft library running inside one namespace. */
export class Harness {
  private readonly child: ChildProcess;
  private nextId = 1;
  private readonly waiting = new Map<number, (r: HarnessReply) => void>();
  private stderr = '';

  constructor(readonly ns: Netns) {
    this.child = ns.spawn('node', [HARNESS], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const r = JSON.parse(line) as HarnessReply;
      this.waiting.get(r.id)?.(r);
      this.waiting.delete(r.id);
    });
    this.child.on('exit', (code) => {
      for (const [, w] of this.waiting) w({ id: -1, ok: false, error: { name: 'Exit', message: `harness exited ${code}: ${this.stderr}` } });
      this.waiting.clear();
    });
  }

  call<T>(req: HarnessRequest): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, (r) => {
        if (r.ok) resolve(r.result as T);
        else reject(new HarnessError(r.error.code, r.error.errno, r.error.message));
      });
      this.child.stdin!.write(`${JSON.stringify({ id, ...req })}\n`);
    });
  }

  poll(ref: NftRef, opts: { now?: number; toleranceMs?: number } = {}): Promise<Change[]> {
    return this.call({ op: 'poll', ref, ...opts });
  }
  pollEarly(ref: NftRef, opts: { now?: number; toleranceMs?: number } = {}): Promise<{ parts: Change[][]; rest: Change[] }> {
    return this.call({ op: 'pollEarly', ref, ...opts });
  }
  write(ref: NftRef, entries: NftEntry[], now?: number): Promise<WriteResult> {
    return this.call(now === undefined ? { op: 'write', ref, entries } : { op: 'write', ref, entries, now });
  }
  listSets(filter?: { family?: NftRef['family']; table?: string }): Promise<NftSetSummary[]> {
    return this.call(filter ? { op: 'listSets', filter } : { op: 'listSets' });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.child.exitCode !== null) return resolve();
      this.child.once('exit', () => resolve());
      this.child.stdin!.end();
    });
  }
}

/** One element as `nft -j list` shows it: times in whole seconds (nft truncates). */
export interface JsonElem {
  readonly addr: string;
  readonly timeout?: number;
  readonly expires?: number;
  /** A mark, or `[addr, port]` of a concatenation. */
  readonly data?: number | readonly [string, number];
}

type JsonKey = string | { elem: { val: string; timeout?: number; expires?: number } };
type JsonData = number | { concat: [string, number] };

/** nft prints some IPv6 forms its own way (`::ffff:10.1.2.3`); compare canonical text. */
function canon(text: string): string {
  const ip = canonicalAddr(text);
  assert.ok(ip, `nft printed ${text}, not an address`);
  return ip.addr;
}

function fromKey(k: JsonKey): JsonElem {
  if (typeof k === 'string') return { addr: canon(k) };
  return { addr: canon(k.elem.val), ...(k.elem.timeout === undefined ? {} : { timeout: k.elem.timeout }), ...(k.elem.expires === undefined ? {} : { expires: k.elem.expires }) };
}

/** A set's elements by address, and when (epoch ms) nft was started and had answered. */
export class NftListing extends Map<string, JsonElem> {
  before = 0;
  after = 0;
}

/** The elements of a set or map, keyed by address, as `nft -j list set|map` prints them. */
export async function nftElems(ns: Netns, ref: NftRef, kind: 'set' | 'map'): Promise<NftListing> {
  const before = Date.now();
  const out = await ns.must('nft', ['-j', 'list', kind, ref.family, ref.table, ref.set]);
  const after = Date.now();
  const doc = JSON.parse(out) as { nftables: Record<string, { elem?: unknown[] }>[] };
  const body = doc.nftables.find((o) => o[kind])?.[kind];
  assert.ok(body, `nft -j list ${kind} printed no ${kind}`);
  const m = new NftListing();
  m.before = before;
  m.after = after;
  for (const raw of body.elem ?? []) {
    if (kind === 'set') {
      const e = fromKey(raw as JsonKey);
      m.set(e.addr, e);
    } else {
      const [k, d] = raw as [JsonKey, JsonData];
      const e = fromKey(k);
      m.set(e.addr, { ...e, data: typeof d === 'number' ? d : [canon(d.concat[0]), d.concat[1]] });
    }
  }
  return m;
}

/** The upserted entries of some changes, by address. */
export function upserts(changes: readonly Change[]): Map<string, NftEntry> {
  const m = new Map<string, NftEntry>();
  for (const c of changes) if (c.op === 'upsert' && c.entry.kind === 'nft') m.set(c.entry.addr, c.entry);
  return m;
}

/** `op addr` lines of some changes, sorted, for exact assertions. */
export function summary(changes: readonly Change[]): string[] {
  return changes
    .map((c) => (c.op === 'upsert' ? `upsert ${c.entry.kind === 'nft' ? c.entry.addr : '?'}` : c.op === 'delete' ? `delete ${c.key}` : 'drop'))
    .sort();
}

/**
 * An element's `expires` as nft printed it agrees with our deadline `expiresAt` within a second.
 * nft truncates to whole seconds (the true remaining life is in [shown, shown + 1)) and computed it
 * at some moment between `listing.before` and `listing.after`, when ours was between
 * expiresAt - after and expiresAt - before.
 */
export function assertExpiresClose(nftSeconds: number | undefined, expiresAt: number, listing: NftListing, what: string): void {
  assert.ok(nftSeconds !== undefined, `${what}: nft shows no expires`);
  const hi = (expiresAt - listing.before) / 1000;
  const lo = (expiresAt - listing.after) / 1000;
  assert.ok(
    nftSeconds + 1 >= lo - 1 && nftSeconds <= hi + 1,
    `${what}: nft shows expires ${nftSeconds}s while ours was ${lo.toFixed(3)}..${hi.toFixed(3)}s`,
  );
}
