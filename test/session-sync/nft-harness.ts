// Runs the nft library inside a network namespace for the tests (a netlink socket lives in the
// namespace of the process that opens it): `ip netns exec <ns> node nft-harness.js` reads one JSON
// request per stdin line and answers one JSON line on stdout. Pollers keep their state between
// requests, so a test can change the set with `nft` and poll again.

import { createSocket } from 'node:dgram';
import { createInterface } from 'node:readline';
import { tableId, type Change, type NftEntry } from '../../session-sync/model.js';
import * as codec from '../../session-sync/nft/codec.js';
import { NftError } from '../../session-sync/nft/errors.js';
import { NftPoller } from '../../session-sync/nft/poller.js';
import type { NftRef, SetFilter } from '../../session-sync/nft/sets.js';
import { NftSocket } from '../../session-sync/nft/socket.js';
import { NftWriter } from '../../session-sync/nft/writer.js';

export type HarnessRequest =
  | { op: 'poll'; ref: NftRef; now?: number; toleranceMs?: number }
  /** A poll handing each dump part's changes to `early`: answers the parts and the rest. */
  | { op: 'pollEarly'; ref: NftRef; now?: number; toleranceMs?: number }
  | { op: 'reset'; ref: NftRef }
  /** What the last poll of `ref` cost (NftPoller.lastStats). */
  | { op: 'stats'; ref: NftRef; toleranceMs?: number }
  | { op: 'write'; ref: NftRef; entries: NftEntry[]; now?: number }
  | { op: 'clear'; ref: NftRef }
  | { op: 'listSets'; filter?: SetFilter }
  | { op: 'socketInfo' }
  /** Sends `count` UDP datagrams from `from` to `to`:`port` (loopback addresses of this namespace). */
  | { op: 'udp'; from: string; to: string; port: number; count?: number }
  /** One transaction of raw NEWSETELEM elements (hex key/data), for atomicity tests; answers the errnos. */
  | { op: 'rawAdd'; ref: NftRef; elems: { key: string; data?: string; timeoutMs?: number; expirationMs?: number }[] };

export type HarnessReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; code?: string; errno?: number; message: string } };

const pollers = new Map<string, NftPoller>();
const writer = new NftWriter();
let sock: NftSocket | undefined;

function pollerFor(ref: NftRef, toleranceMs?: number): NftPoller {
  const id = `${tableId(ref)}#${toleranceMs ?? ''}`;
  let p = pollers.get(id);
  if (!p) {
    p = new NftPoller(ref, toleranceMs === undefined ? {} : { toleranceMs });
    pollers.set(id, p);
  }
  return p;
}

function sendUdp(from: string, to: string, port: number, count: number): Promise<void> {
  const s = createSocket(to.includes(':') ? 'udp6' : 'udp4');
  return new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind({ address: from, port: 0 }, () => {
      let left = count;
      const next = (): void => {
        if (left-- === 0) {
          s.close();
          resolve();
          return;
        }
        s.send(Buffer.from('ssync'), port, to, (err) => (err ? reject(err) : next()));
      };
      next();
    });
  });
}

async function handle(req: HarnessRequest): Promise<unknown> {
  switch (req.op) {
    case 'poll':
      return pollerFor(req.ref, req.toleranceMs).poll(req.now ?? Date.now());
    case 'pollEarly': {
      const parts: Change[][] = [];
      const rest = await pollerFor(req.ref, req.toleranceMs).poll(req.now ?? Date.now(), (c) => parts.push(c));
      return { parts, rest };
    }
    case 'reset':
      for (const [id, p] of pollers) if (id.startsWith(`${tableId(req.ref)}#`)) p.reset();
      return null;
    case 'stats':
      return pollerFor(req.ref, req.toleranceMs).lastStats;
    case 'write':
      return writer.write(req.ref, req.entries, req.now ?? Date.now());
    case 'clear':
      await writer.clear(req.ref);
      return null;
    case 'listSets':
      return writer.listSets(req.filter);
    case 'socketInfo': {
      sock ??= new NftSocket();
      return { sendBuffer: sock.sendBuffer, recvBuffer: sock.recvBuffer };
    }
    case 'udp':
      await sendUdp(req.from, req.to, req.port, req.count ?? 1);
      return null;
    case 'rawAdd': {
      sock ??= new NftSocket();
      const w = new codec.NlWriter();
      codec.writeBatchBegin(w);
      const m = codec.beginElemMessage(w, 'add', req.ref.family, req.ref.table, req.ref.set);
      for (const e of req.elems) {
        const data = e.data === undefined ? null : Buffer.from(e.data, 'hex');
        codec.writeElem(w, Buffer.from(e.key, 'hex'), data, e.timeoutMs ?? 0, e.expirationMs ?? 0);
      }
      codec.endElemMessage(w, m);
      codec.writeBatchEnd(w);
      return Array.from(await sock.exchange('rawAdd', w));
    }
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let id = -1;
  void (async () => {
    try {
      const msg = JSON.parse(line) as HarnessRequest & { id: number };
      id = msg.id;
      const result = await handle(msg);
      process.stdout.write(`${JSON.stringify({ id, ok: true, result } satisfies HarnessReply)}\n`);
    } catch (e) {
      const err = e as Error;
      const error =
        e instanceof NftError
          ? { name: e.name, code: e.code, errno: e.errno, message: e.message }
          : { name: err.name ?? 'Error', message: err.message ?? String(e) };
      process.stdout.write(`${JSON.stringify({ id, ok: false, error } satisfies HarnessReply)}\n`);
    }
  })();
});
rl.on('close', () => {
  for (const p of pollers.values()) p.close();
  writer.close();
  sock?.close();
});
