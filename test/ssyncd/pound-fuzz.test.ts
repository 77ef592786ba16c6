// 10,000 random and mutated Pound frames fed to a real ssyncd master over Pound's sync socket, in
// random pieces and over two connections (the hostile Pound "crashes" halfway): the master and its
// backup keep running, every session they hold is one Pound's format can describe, and valid frames
// sent afterwards still arrive. The hostile Pound is this test's own server, not the double.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'mocha';
import { poundSocketPath } from '../../session-sync/pound/backend.js';
import { Netns, netnsUnavailable, sleep } from '../helpers/netns.js';
import { poundStyleFrame, SESS_ADD, SESS_DELETE, SESS_UPDATE } from '../helpers/pound-double.js';
import { prng } from '../helpers/prng.js';
import { Daemon, eventually } from '../helpers/ssyncd.js';

interface ShowHttpJson {
  farms: { name: string; listeners: { listener: number; services: { service: number; sessions: { key: string; backend: number; lastAccess: number; content: string }[] }[] }[] }[];
}

const FARM = 'fz';
const FRAMES = 10_000;
const rnd = prng(0x90dd);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const int = (n: number): number => Math.floor(rnd() * n);
const bytes = (n: number, printable: boolean): string => String.fromCharCode(...Array.from({ length: n }, () => (printable ? 0x21 + int(94) : int(256))));

function validFrame(): Buffer {
  const action = rnd() < 0.9 ? pick([SESS_ADD, SESS_ADD, SESS_UPDATE, SESS_DELETE]) : pick([0, 1, 5, 20, 21, 22, 9]);
  return poundStyleFrame({
    action,
    farm: rnd() < 0.95 ? FARM : '',
    listener: int(3),
    service: int(3),
    backend: rnd() < 0.95 ? int(10) : int(70_000),
    key: bytes(pick([0, 1, 8, 24, 200, 255, 256, 300, 700]), rnd() < 0.7),
    content: rnd() < 0.9 ? `10.0.${int(4)}.${int(250)}` : '',
    lastAcc: Math.floor(Date.now() / 1000) - int(100_000),
  });
}

function mutated(): Buffer {
  const b = Buffer.from(validFrame());
  const r = rnd();
  if (r < 0.5) for (let k = 0; k < 1 + int(4); k++) b[int(b.length)] = int(256);
  else if (r < 0.7) return b.subarray(0, int(b.length));
  else if (r < 0.85) b[5 + 1 + (b[6] ?? 0) + 1 + 12] = int(256); // a length byte that lies (or a field)
  else return Buffer.concat([b.subarray(0, int(b.length)), Buffer.from(bytes(int(40), false), 'latin1'), b]);
  return b;
}

function junk(): Buffer {
  const b = Buffer.from(bytes(1 + int(80), false), 'latin1');
  return rnd() < 0.5 ? Buffer.concat([Buffer.from([0xef, 0xab, 0x06]), b]) : b;
}

/** A Pound that answers SYNC_REQUEST with whatever the test pushes through `send`. */
class HostilePound {
  private readonly server: Server;
  conn: Socket | undefined;
  readonly requests: Buffer[] = [];
  private waiters: (() => void)[] = [];

  constructor(path: string) {
    this.server = createServer((s) => {
      s.on('error', () => undefined);
      s.once('data', (b: Buffer) => {
        this.requests.push(b);
        this.conn = s;
        for (const w of this.waiters.splice(0)) w();
      });
    });
    this.server.listen(path);
  }

  async requested(n: number): Promise<void> {
    while (this.requests.length < n) await new Promise<void>((r) => this.waiters.push(r));
  }

  /** Writes `data` in random pieces, yielding between them so the reader sees partial frames. */
  async send(data: Buffer): Promise<void> {
    for (let p = 0; p < data.length; ) {
      const n = 1 + int(300);
      if (!this.conn!.write(data.subarray(p, p + n))) await new Promise((r) => this.conn!.once('drain', r));
      p += n;
      if (rnd() < 0.3) await new Promise((r) => setImmediate(r));
    }
  }

  close(): Promise<void> {
    this.conn?.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

describe('ssyncd under hostile Pound frames', function () {
  this.timeout(180_000);
  let ns: Netns;
  let master: Daemon, backup: Daemon;
  let dir: string;
  let pound: HostilePound;

  before(async function () {
    const why = netnsUnavailable();
    if (why) throw new Error(`these tests need root on Linux: ${why}`);
    ns = await Netns.create('sspz');
    dir = mkdtempSync(join(tmpdir(), 'pound-fz-'));
    const fast = ['key_file none', 'poll_interval_ms 200', 'heartbeat_ms 200', 'dead_time_ms 1000', 'reconnect_min_ms 50', 'reconnect_max_ms 200', `pound_socket_dir ${dir}`];
    master = new Daemon({ ns, name: 'pzm', args: ['-M', '-p', '7796', '-b', '127.0.0.1'], config: fast });
    backup = new Daemon({ ns, name: 'pzb', args: ['-B', '-a', '127.0.0.1', '-p', '7796'], config: [...fast.slice(0, -1), `pound_socket_dir ${join(dir, 'b')}`] });
    pound = new HostilePound(poundSocketPath(dir, FARM));
    await master.start();
    await backup.start();
  });

  after(async () => {
    for (const d of [master, backup]) await d?.kill9();
    await pound?.close();
    await ns?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
    for (const d of [master, backup]) if (d) rmSync(d.dir, { recursive: true, force: true });
  });

  it('10,000 random and mutated frames over two connections crash nothing, and valid frames after them arrive', async () => {
    assert.equal((await master.ctl(['start', 'http', FARM])).code, 0);
    await pound.requested(1);
    assert.deepEqual(pound.requests[0], Buffer.from('efab0609000102667a', 'hex'), 'SYNC_REQUEST(fz), exact length');
    let sent = 0;
    for (const half of [0, 1]) {
      if (half === 1) {
        pound.conn!.destroy(); // Pound dies halfway: the master reconnects and asks again
        await pound.requested(2);
      }
      for (let batch = 0; batch < FRAMES / 2 / 50; batch++) {
        const frames: Buffer[] = [];
        for (let i = 0; i < 50; i++) {
          const r = rnd();
          frames.push(r < 0.4 ? validFrame() : r < 0.75 ? mutated() : junk());
        }
        sent += frames.length;
        await pound.send(Buffer.concat(frames));
      }
    }
    assert.equal(sent, FRAMES);
    await sleep(300); // the stream goes quiet: whatever was left is flushed or skipped
    const sentinels = Array.from({ length: 5 }, (_, i) => `sentinel-${i}`);
    await pound.send(Buffer.concat(sentinels.map((key, i) => poundStyleFrame({ action: SESS_ADD, farm: FARM, listener: 0, service: i % 2, backend: i, key, content: '10.9.9.9', lastAcc: 1_700_000_000 }))));
    const keysOf = (j: ShowHttpJson): string[] => j.farms.flatMap((f) => f.listeners.flatMap((l) => l.services.flatMap((s) => s.sessions.map((x) => `${l.listener}/${s.service}/${x.key}>${x.backend}`)))).sort();
    const has = async (d: Daemon): Promise<boolean> => {
      const shown = keysOf(await d.json<ShowHttpJson>(['show', 'http']));
      return sentinels.every((k, i) => shown.includes(`0/${i % 2}/${k}>${i}`));
    };
    assert.ok(await eventually(() => has(master), 15_000), `sentinels on the master\n${master.log().slice(-3000)}`);
    assert.ok(await eventually(() => has(backup), 15_000), 'sentinels on the backup');
    for (const d of [master, backup]) assert.ok(d.alive, `${d.spec.name} still running\n${d.log().slice(-2000)}`);
    assert.match(master.log(), /pound farm fz: .*: skipped \d+ bytes at stream offset \d+ and resynchronised on the next frame/);
    assert.match(master.log(), /pound farm fz: reconnected after \d+ attempts?/);

    // Everything held is something Pound's format can describe.
    const shown = await master.json<ShowHttpJson>(['show', 'http']);
    let n = 0;
    for (const f of shown.farms) {
      for (const l of f.listeners) {
        for (const s of l.services) {
          for (const x of s.sessions) {
            n += 1;
            assert.ok(l.listener < 65_536 && s.service < 65_536 && x.backend < 65_536, `ordinals of ${JSON.stringify(x)}`);
            assert.ok(x.key.length >= 1 && x.key.length <= 255, `key of ${x.key.length}`);
            assert.match(x.content, /^[\x20-\x7e]{0,255}$/);
          }
        }
      }
    }
    assert.ok(n >= sentinels.length);
    assert.ok(await eventually(async () => JSON.stringify(keysOf(await backup.json<ShowHttpJson>(['show', 'http']))) === JSON.stringify(keysOf(await master.json<ShowHttpJson>(['show', 'http']))), 15_000), 'the backup holds the master\'s copy');
    assert.equal((await master.ctl(['show', 'mode'])).stdout, 'master\n');
  });
});
