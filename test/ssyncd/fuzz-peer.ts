// A hostile peer for the fuzz test, run inside the test's namespace: attacks a master's port as a
// fake backup, or serves a backup as a fake master, with random and mutated frames. Prints a JSON
// summary on stdout. Frames are built with the project's own encoder, then broken.

import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import type { Change, Entry, TableRef } from '../../session-sync/model.js';
import { FrameEncoder } from '../../session-sync/wire/frame.js';
import { encodePayload, typeCode, type Message } from '../../session-sync/wire/messages.js';
import { prng } from '../helpers/prng.js';

interface Opts {
  mode: 'attack-master' | 'fake-master';
  host: string;
  port: number;
  frames: number;
  seed: number;
  /** Share of frames sent intact (the rest are mutated or random). */
  validShare: number;
}

const o = JSON.parse(process.argv[2]!) as Opts;
const rnd = prng(o.seed);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const T: TableRef = { kind: 'recent', name: 'fz' };
const N: TableRef = { kind: 'nft', family: 'inet', table: 'lb', set: 'fz' };

function entry(table: TableRef): Entry {
  const addr = rnd() < 0.8 ? `10.77.${Math.floor(rnd() * 4)}.${Math.floor(rnd() * 250)}` : `fd77::${Math.floor(rnd() * 999)}`;
  const family = addr.includes(':') ? 6 : 4;
  if (table.kind === 'recent') return { kind: 'recent', addr, family, ttl: Math.floor(rnd() * 256), hits: [Date.now() - 5000, Date.now()] };
  return { kind: 'nft', addr, family, data: rnd() < 0.5 ? null : { type: 'mark', mark: Math.floor(rnd() * 1e6) }, timeoutMs: 60_000, expiresAt: Date.now() + 30_000 };
}

function mutate(frame: Buffer): Buffer {
  const r = rnd();
  if (r < 0.25) return randomBytes(1 + Math.floor(rnd() * 80));
  const b = Buffer.from(frame);
  if (r < 0.6) {
    for (let k = 0; k < 1 + Math.floor(rnd() * 4); k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
    return b;
  }
  if (r < 0.8) {
    b.writeUInt32BE(Math.floor(rnd() * 0xffffffff), 2); // a length that lies
    return b;
  }
  return Buffer.concat([b.subarray(0, Math.max(1, Math.floor(rnd() * b.length))), randomBytes(Math.floor(rnd() * 16))]);
}

let sent = 0;
let connections = 0;
let closedByPeer = 0;

function frame(enc: FrameEncoder, m: Message): Buffer {
  return enc.encode(typeCode(m), encodePayload(m, Date.now()));
}

/** Frames a backup would never send, and frames it would, to a master. */
function toMaster(enc: FrameEncoder, i: number): Buffer {
  const m: Message = pick<Message>([
    { type: 'ack', seq: Math.floor(rnd() * 3) },
    { type: 'heartbeat', seq: i },
    { type: 'changes', seq: 1, changes: [{ op: 'upsert', table: T, entry: entry(T) }] },
    { type: 'entries', table: N, entries: [entry(N)] },
    { type: 'auth', proof: randomBytes(32) },
  ]);
  return rnd() < o.validShare ? frame(enc, m) : mutate(frame(enc, m));
}

async function attackMaster(): Promise<void> {
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      connections += 1;
      const s: Socket = connect({ host: o.host, port: o.port });
      const enc = new FrameEncoder();
      let burst = 0;
      s.on('error', () => undefined);
      s.on('close', () => {
        closedByPeer += 1;
        resolve();
      });
      s.once('connect', () => {
        s.write(frame(enc, { type: 'hello', role: 'backup', auth: false, nonce: randomBytes(32), node: 'fuzz' }));
        const tick = (): void => {
          if (s.destroyed || sent >= o.frames || burst >= 40) {
            s.destroy();
            return;
          }
          burst += 1;
          sent += 1;
          s.write(toMaster(enc, sent));
          setImmediate(tick);
        };
        s.once('data', () => tick());
      });
    });
  while (sent < o.frames) await Promise.all(Array.from({ length: 8 }, one));
}

/** A plausible master stream: snapshot, entries, changes in order; some frames broken. */
async function fakeMaster(): Promise<void> {
  await new Promise<void>((resolve) => {
    const server = createServer((s) => {
      connections += 1;
      const enc = new FrameEncoder();
      s.on('error', () => undefined);
      s.on('close', () => {
        closedByPeer += 1;
        if (sent >= o.frames) {
          server.close();
          resolve();
        }
      });
      s.once('data', () => {
        const out: Buffer[] = [frame(enc, { type: 'hello', role: 'master', auth: false, nonce: randomBytes(32), node: 'fuzz-master' })];
        const plan: Message[] = [{ type: 'snapshot-begin', generation: connections, seq: 0 }];
        for (let k = 0; k < 3; k++) plan.push({ type: 'entries', table: pick([T, N]), entries: Array.from({ length: 1 + Math.floor(rnd() * 5) }, () => entry(T)) });
        plan.push({ type: 'snapshot-end', generation: connections, tables: 1, entries: 5 });
        for (let seq = 1; seq <= 14; seq++) {
          const changes: Change[] = [rnd() < 0.7 ? { op: 'upsert', table: T, entry: entry(T) } : { op: 'delete', table: T, key: '10.77.0.1' }];
          plan.push(rnd() < 0.1 ? { type: 'heartbeat', seq } : { type: 'changes', seq, changes });
        }
        for (const m of plan) {
          if (sent >= o.frames) break;
          // entries of an nft table must be nft entries: the plan's recent entries in N are a semantic attack
          out.push(rnd() < o.validShare ? frame(enc, m) : mutate(frame(enc, m)));
          sent += 1;
        }
        s.end(Buffer.concat(out));
      });
    });
    server.listen({ host: o.host, port: o.port });
  });
}

await (o.mode === 'attack-master' ? attackMaster() : fakeMaster());
process.stdout.write(JSON.stringify({ sent, connections, closedByPeer }) + '\n');
