// The messages master and backup exchange, as one discriminated union with one codec. Times travel as
// ages relative to the moment of encoding (the sender's clock) and are rebuilt against the receiver's
// clock at decoding, so the two directors never need synchronised clocks or equal jiffies/HZ.
//
// Layouts (all integers big-endian; "ms" fields are u48):
//   table  := u8 kind (1 recent, 2 nft)
//             recent: str8 name            nft: u8 family index, str8 table, str8 set
//   addr   := u8 family (4|6), 4 or 16 bytes
//   recent entry := addr, u8 ttl, u16 n (1..MAX_HITS), n x u48 age ms (oldest first)
//   nft entry    := addr, u8 data kind (0 none, 1 mark, 2 addr.port),
//                   [mark: u32] [addr.port: addr, u16 port], u48 timeout ms,
//                   u8 has-expiry, [u48 remaining ms]
//   http session := u32 listener, u32 service, str16 key, u32 backend, str16 content, u48 age of last access
//   override     := str8 VKEY, str8 RKEY, u32 weight, u8 percent, u8 rstate (0 ONLINE, 1 OFFLINE, 2 DOWN)
//   delete key   := addr (recent, nft) | str16 entry key (http `L/S/key`, overrides `VKEY RKEY`)

import { addrBytes, addrFromBytes } from '../../common/addr.js';
import {
  farmNameProblem,
  MAX_HTTP_FIELD,
  NFT_FAMILIES,
  NFT_NAME_MAX,
  nftRefProblem,
  RECENT_NAME_MAX,
  recentNameProblem,
  type Change,
  type Entry,
  type Family,
  type NftData,
  type HttpSession,
  type NftEntry,
  type OperatorOverride,
  type RecentEntry,
  type RState,
  type TableRef,
} from '../model.js';
import { ByteReader, ByteWriter, WireError } from './bytes.js';

/** Protocol version carried in every frame header. */
export const PROTOCOL_VERSION = 1;
/** More hits than the kernel can hold per entry (XT_RECENT_MAX_NSTAMPS 256) is refused. */
export const MAX_HITS = 256;
export const NONCE_BYTES = 32;
export const MAC_BYTES = 32;

export const MSG = {
  HELLO: 1,
  AUTH: 2,
  AUTH_OK: 3,
  REFUSE: 4,
  SNAPSHOT_BEGIN: 5,
  ENTRIES: 6,
  SNAPSHOT_END: 7,
  CHANGES: 8,
  ACK: 9,
  HEARTBEAT: 10,
} as const;
export type MsgType = (typeof MSG)[keyof typeof MSG];

export type Role = 'master' | 'backup';

export type Message =
  | { readonly type: 'hello'; readonly role: Role; readonly auth: boolean; readonly nonce: Buffer; readonly node: string }
  | { readonly type: 'auth'; readonly proof: Buffer }
  | { readonly type: 'auth-ok'; readonly proof: Buffer }
  | { readonly type: 'refuse'; readonly reason: string }
  | { readonly type: 'snapshot-begin'; readonly generation: number; /** Last CHANGES seq sent before it. */ readonly seq: number }
  | { readonly type: 'entries'; readonly table: TableRef; readonly entries: readonly Entry[] }
  | { readonly type: 'snapshot-end'; readonly generation: number; readonly tables: number; readonly entries: number }
  | { readonly type: 'changes'; readonly seq: number; readonly changes: readonly Change[] }
  | { readonly type: 'ack'; readonly seq: number }
  | { readonly type: 'heartbeat'; readonly seq: number };

const TYPE_CODE: Readonly<Record<Message['type'], MsgType>> = {
  hello: MSG.HELLO,
  auth: MSG.AUTH,
  'auth-ok': MSG.AUTH_OK,
  refuse: MSG.REFUSE,
  'snapshot-begin': MSG.SNAPSHOT_BEGIN,
  entries: MSG.ENTRIES,
  'snapshot-end': MSG.SNAPSHOT_END,
  changes: MSG.CHANGES,
  ack: MSG.ACK,
  heartbeat: MSG.HEARTBEAT,
};

const KNOWN = new Set<number>(Object.values(MSG));

/** Types this version decodes; a newer peer's other types are skipped, not fatal. */
export function isKnownType(type: number): boolean {
  return KNOWN.has(type);
}

export function typeCode(m: Message): MsgType {
  return TYPE_CODE[m.type];
}

// ---------------------------------------------------------------------------------------------------
// Encoding

/** Encodes a message's payload; `now` is the sender's clock (epoch ms) that ages are taken from. */
export function encodePayload(m: Message, now: number): Buffer {
  const w = new ByteWriter(m.type === 'entries' || m.type === 'changes' ? 4096 : 64);
  switch (m.type) {
    case 'hello':
      w.u8(m.role === 'master' ? 2 : 1).u8(m.auth ? 1 : 0).bytes(m.nonce).str8(m.node);
      break;
    case 'auth':
    case 'auth-ok':
      w.bytes(m.proof);
      break;
    case 'refuse':
      w.str8(m.reason.slice(0, 200));
      break;
    case 'snapshot-begin':
      w.u48(m.generation).u48(m.seq);
      break;
    case 'entries':
      writeTable(w, m.table);
      w.u32(m.entries.length);
      for (const e of m.entries) writeEntry(w, e, now);
      break;
    case 'snapshot-end':
      w.u48(m.generation).u32(m.tables).u32(m.entries);
      break;
    case 'changes':
      w.u48(m.seq).u32(m.changes.length);
      for (const c of m.changes) writeChange(w, c, now);
      break;
    case 'ack':
    case 'heartbeat':
      w.u48(m.seq);
      break;
  }
  return w.take();
}

const RSTATES: readonly RState[] = ['ONLINE', 'OFFLINE', 'DOWN'];

function writeTable(w: ByteWriter, t: TableRef): void {
  switch (t.kind) {
    case 'recent':
      w.u8(1).str8(t.name);
      break;
    case 'nft':
      w.u8(2).u8(NFT_FAMILIES.indexOf(t.family)).str8(t.table).str8(t.set);
      break;
    case 'http':
      w.u8(3).str8(t.farm);
      break;
    case 'overrides':
      w.u8(4).str8(t.name);
      break;
  }
}

function writeAddr(w: ByteWriter, family: Family, addr: string): void {
  w.u8(family).bytes(addrBytes({ addr, family }));
}

export function writeEntry(w: ByteWriter, e: Entry, now: number): void {
  if (e.kind === 'http') {
    w.u32(e.listener).u32(e.service).str16(e.key).u32(e.backend).str16(e.content).u48(now - e.lastAccess);
    return;
  }
  if (e.kind === 'override') {
    w.str8(e.virtual).str8(e.real).u32(e.weight).u8(e.percent ? 1 : 0).u8(RSTATES.indexOf(e.rstate));
    return;
  }
  writeAddr(w, e.family, e.addr);
  if (e.kind === 'recent') {
    w.u8(e.ttl).u16(e.hits.length);
    for (const h of e.hits) w.u48(now - h);
    return;
  }
  const d = e.data;
  if (d === null) w.u8(0);
  else if (d.type === 'mark') w.u8(1).u32(d.mark);
  else {
    w.u8(2);
    writeAddr(w, d.family, d.addr);
    w.u16(d.port);
  }
  w.u48(e.timeoutMs);
  if (e.expiresAt === null) w.u8(0);
  else w.u8(1).u48(e.expiresAt - now);
}

function writeChange(w: ByteWriter, c: Change, now: number): void {
  writeTable(w, c.table);
  if (c.op === 'upsert') {
    w.u8(1);
    writeEntry(w, c.entry, now);
  } else if (c.op === 'delete') {
    w.u8(2);
    if (c.table.kind === 'recent' || c.table.kind === 'nft') writeAddr(w, c.key.includes(':') ? 6 : 4, c.key);
    else w.str16(c.key);
  } else {
    w.u8(3);
  }
}

// ---------------------------------------------------------------------------------------------------
// Decoding (every field checked; the caller closes the connection on a WireError)

/** Decodes a payload of `type`; `now` is the receiver's clock that ages are turned back into times. */
export function decodePayload(type: number, payload: Buffer, now: number): Message {
  const r = new ByteReader(payload);
  let m: Message;
  switch (type) {
    case MSG.HELLO: {
      const role = r.u8('hello role');
      if (role !== 1 && role !== 2) throw new WireError('hello role', 0, `unknown role ${role}`);
      const auth = r.u8('hello auth flag');
      if (auth > 1) throw new WireError('hello auth flag', 1, `must be 0 or 1, not ${auth}`);
      const nonce = Buffer.from(r.bytes(NONCE_BYTES, 'hello nonce'));
      const node = r.str8('hello node name', 255, (s) => (/^[\x20-\x7e]*$/.test(s) ? undefined : 'not printable ASCII'));
      m = { type: 'hello', role: role === 2 ? 'master' : 'backup', auth: auth === 1, nonce, node };
      break;
    }
    case MSG.AUTH:
    case MSG.AUTH_OK: {
      const proof = Buffer.from(r.bytes(MAC_BYTES, 'auth proof'));
      m = type === MSG.AUTH ? { type: 'auth', proof } : { type: 'auth-ok', proof };
      break;
    }
    case MSG.REFUSE:
      m = { type: 'refuse', reason: r.str8('refuse reason').replace(/[^\x20-\x7e]/g, '?') };
      break;
    case MSG.SNAPSHOT_BEGIN:
      m = { type: 'snapshot-begin', generation: r.u48('generation'), seq: r.u48('snapshot seq') };
      break;
    case MSG.ENTRIES: {
      const table = readTable(r);
      const n = r.u32('entry count');
      // Each entry takes at least 8 bytes: refuse a count the payload cannot hold before allocating.
      if (n > r.remaining / 8) throw new WireError('entry count', r.offset - 4, `${n} entries cannot fit ${r.remaining} bytes`);
      const entries: Entry[] = [];
      for (let i = 0; i < n; i++) entries.push(readEntry(r, table, now, `entry ${i}`));
      m = { type: 'entries', table, entries };
      break;
    }
    case MSG.SNAPSHOT_END:
      m = { type: 'snapshot-end', generation: r.u48('generation'), tables: r.u32('table count'), entries: r.u32('entry count') };
      break;
    case MSG.CHANGES: {
      const seq = r.u48('changes seq');
      const n = r.u32('change count');
      if (n > r.remaining / 4) throw new WireError('change count', r.offset - 4, `${n} changes cannot fit ${r.remaining} bytes`);
      const changes: Change[] = [];
      for (let i = 0; i < n; i++) changes.push(readChange(r, now, `change ${i}`));
      m = { type: 'changes', seq, changes };
      break;
    }
    case MSG.ACK:
      m = { type: 'ack', seq: r.u48('ack seq') };
      break;
    case MSG.HEARTBEAT:
      m = { type: 'heartbeat', seq: r.u48('heartbeat seq') };
      break;
    default:
      throw new WireError('type', 0, `unknown message type ${type}`);
  }
  r.done(`${m.type} payload`);
  return m;
}

function readTable(r: ByteReader): TableRef {
  const kind = r.u8('table kind');
  if (kind === 1) return { kind: 'recent', name: r.str8('recent table name', RECENT_NAME_MAX, recentNameProblem) };
  if (kind === 2) {
    const at = r.offset;
    const fi = r.u8('nft family');
    const family = NFT_FAMILIES[fi];
    if (family === undefined) throw new WireError('nft family', at, `unknown family index ${fi}`);
    const table = r.str8('nft table name', NFT_NAME_MAX);
    const set = r.str8('nft set name', NFT_NAME_MAX);
    const why = nftRefProblem({ family, table, set });
    if (why !== undefined) throw new WireError('nft set', at, why);
    return { kind: 'nft', family, table, set };
  }
  if (kind === 3) return { kind: 'http', farm: r.str8('http farm name', 255, farmNameProblem) };
  if (kind === 4) return { kind: 'overrides', name: r.str8('overrides name', 255, farmNameProblem) };
  throw new WireError('table kind', r.offset - 1, `unknown table kind ${kind}`);
}

function readAddr(r: ByteReader, field: string): { family: Family; addr: string } {
  const at = r.offset;
  const f = r.u8(`${field} family`);
  if (f !== 4 && f !== 6) throw new WireError(`${field} family`, at, `must be 4 or 6, not ${f}`);
  const ip = addrFromBytes(r.bytes(f === 4 ? 4 : 16, field));
  return { family: f, addr: ip.addr };
}

const printable = (s: string): string | undefined => (/^[\x20-\x7e]+$/.test(s) ? undefined : 'empty or not printable ASCII');

function readHttp(r: ByteReader, now: number, field: string): HttpSession {
  const listener = r.u32(`${field} listener`);
  const service = r.u32(`${field} service`);
  const key = r.str16(`${field} key`, MAX_HTTP_FIELD, (s) => (s.length > 0 ? undefined : 'empty'));
  const backend = r.u32(`${field} backend`);
  const content = r.str16(`${field} content`, MAX_HTTP_FIELD);
  const lastAccess = now - r.u48(`${field} last access age`);
  return { kind: 'http', listener, service, key, backend, content, lastAccess };
}

function readOverride(r: ByteReader, field: string): OperatorOverride {
  const virtual = r.str8(`${field} virtual`, 255, printable);
  const real = r.str8(`${field} real`, 255, printable);
  const weight = r.u32(`${field} weight`);
  const pct = r.u8(`${field} percent flag`);
  if (pct > 1) throw new WireError(`${field} percent flag`, r.offset - 1, `must be 0 or 1, not ${pct}`);
  const rs = r.u8(`${field} rstate`);
  const rstate = RSTATES[rs];
  if (rstate === undefined) throw new WireError(`${field} rstate`, r.offset - 1, `unknown rstate ${rs}`);
  if (virtual.includes(' ') || real.includes(' ')) throw new WireError(`${field} key`, r.offset, 'VKEY and RKEY hold no spaces');
  return { kind: 'override', virtual, real, weight, percent: pct === 1, rstate };
}

function readEntry(r: ByteReader, table: TableRef, now: number, field: string): Entry {
  if (table.kind === 'http') return readHttp(r, now, field);
  if (table.kind === 'overrides') return readOverride(r, field);
  const { family, addr } = readAddr(r, `${field} address`);
  if (table.kind === 'recent') {
    const ttl = r.u8(`${field} ttl`);
    const at = r.offset;
    const n = r.u16(`${field} hit count`);
    if (n === 0 || n > MAX_HITS) throw new WireError(`${field} hit count`, at, `must be 1..${MAX_HITS}, not ${n}`);
    const hits: number[] = new Array<number>(n);
    for (let i = 0; i < n; i++) hits[i] = now - r.u48(`${field} hit ${i} age`);
    for (let i = 1; i < n; i++) {
      if (hits[i]! < hits[i - 1]!) throw new WireError(`${field} hits`, at, 'ages must run from oldest to newest');
    }
    const e: RecentEntry = { kind: 'recent', addr, family, ttl, hits };
    return e;
  }
  const dk = r.u8(`${field} data kind`);
  let data: NftData | null;
  if (dk === 0) data = null;
  else if (dk === 1) data = { type: 'mark', mark: r.u32(`${field} mark`) };
  else if (dk === 2) {
    const a = readAddr(r, `${field} data address`);
    data = { type: 'addr_port', family: a.family, addr: a.addr, port: r.u16(`${field} data port`) };
  } else throw new WireError(`${field} data kind`, r.offset - 1, `unknown data kind ${dk}`);
  const timeoutMs = r.u48(`${field} timeout`);
  const hx = r.u8(`${field} expiry flag`);
  if (hx > 1) throw new WireError(`${field} expiry flag`, r.offset - 1, `must be 0 or 1, not ${hx}`);
  const expiresAt = hx === 1 ? now + r.u48(`${field} remaining`) : null;
  const e: NftEntry = { kind: 'nft', addr, family, data, timeoutMs, expiresAt };
  return e;
}

/** Why a delete key cannot belong to an http or overrides table, or undefined. */
function keyProblem(table: TableRef, key: string): string | undefined {
  if (table.kind === 'http') return /^\d{1,10}\/\d{1,10}\/./s.test(key) ? undefined : 'not listener/service/key';
  return /^[\x21-\x7e]+ [\x21-\x7e]+$/.test(key) ? undefined : 'not "VKEY RKEY"';
}

function readChange(r: ByteReader, now: number, field: string): Change {
  const table = readTable(r);
  const op = r.u8(`${field} op`);
  if (op === 1) return { op: 'upsert', table, entry: readEntry(r, table, now, field) };
  if (op === 2) {
    if (table.kind === 'recent' || table.kind === 'nft') return { op: 'delete', table, key: readAddr(r, `${field} key`).addr };
    const key = r.str16(`${field} key`, MAX_HTTP_FIELD + 64, (s) => (keyProblem(table, s)));
    return { op: 'delete', table, key };
  }
  if (op === 3) return { op: 'drop', table };
  throw new WireError(`${field} op`, r.offset - 1, `unknown op ${op}`);
}
