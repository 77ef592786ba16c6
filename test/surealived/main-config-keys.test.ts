// Main config keys and options reach the real daemon (the `surealived` command in the foreground, its
// main config file written by the test): control_max_clients, control_idle_timeout, control_socket,
// metrics_listen_addr/port, -n / no_sync (no hand-off at all), -k / use_offline_dump (offline.dump
// neither read nor written).

import { strict as assert } from 'node:assert';
import { lstatSync, mkdtempSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { get } from 'node:http';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlCommand } from '../../common/control-client.js';
import { stopAllSurealived, SurealivedCli } from '../helpers/surealived-cli.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** testport of the probes in this file; the reals' servers listen on it at 127.0.14.x. */
const PORT = 18741;

/** A free TCP port on `host` (bound, then released). */
function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, host, () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

/** A control client that keeps its connection: what it received, whether and when it was closed. */
class Client {
  data = '';
  closedAt: number | null = null;
  readonly openedAt: Promise<number>;
  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => (this.data += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => (this.closedAt = performance.now()));
    this.openedAt = new Promise((resolve) => socket.once('connect', () => resolve(performance.now())));
  }
  static tcp(port: number): Client {
    return new Client(createConnection({ host: '127.0.0.1', port }));
  }
  static unix(path: string): Client {
    return new Client(createConnection({ path }));
  }
  get closed(): boolean {
    return this.closedAt !== null;
  }
  /** Send one command and wait for the reply's end marker (or an error line); the reply. */
  async command(line: string, ms = 5000): Promise<string> {
    const from = this.data.length;
    this.socket.write(`${line}\n`);
    const end = performance.now() + ms;
    while (!this.data.slice(from).endsWith('_SD_CMD_END_\n')) {
      if (this.closed || performance.now() > end) throw new Error(`no reply to ${line}: ${JSON.stringify(this.data.slice(from))}`);
      await sleep(5);
    }
    return this.data.slice(from);
  }
  async waitClosed(ms: number): Promise<void> {
    const end = performance.now() + ms;
    while (!this.closed && performance.now() < end) await sleep(5);
    assert.ok(this.closed, `connection still open after ${ms} ms`);
  }
  close(): void {
    this.socket.destroy();
  }
}

describe('main config keys and options reach the daemon (real surealived process)', function () {
  this.timeout(60000);
  let dir: string;
  const servers: Server[] = [];
  const clients: Client[] = [];
  const track = (c: Client): Client => {
    clients.push(c);
    return c;
  };
  const listen = async (host: string): Promise<void> => {
    const s = createServer((c) => c.on('error', () => undefined).end());
    await new Promise<void>((resolve) => s.listen(PORT, host, () => resolve()));
    servers.push(s);
  };
  /** Virtual web (192.0.2.20:80) with reals a (127.0.14.1) and b (127.0.14.2), probed every 0.2 s, 1/1 retries. */
  const XML =
    `<surealived><virtual name="web" addr="192.0.2.20" port="80" proto="tcp" sched="wrr" rt="dr">` +
    `<tester proto="tcp" testport="${PORT}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="1"/>` +
    `<real name="a" addr="127.0.14.1" port="80" weight="10"/><real name="b" addr="127.0.14.2" port="80" weight="20"/>` +
    `</virtual></surealived>`;
  const VLIST = 'v:0 vname=web vproto=tcp vaddr=192.0.2.20 vport=80 vfwmark=0 vrt=dr vsched=wrr\n_SD_CMD_END_\n';
  const start = (cfgLines: string[] = [], args: string[] = []): Promise<SurealivedCli> => SurealivedCli.start({ dir, xml: XML, cfgLines, args });

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sd-keys-'));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await stopAllSurealived();
    for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('control_max_clients: with 2, a third connection (TCP or unix socket) gets the one error line and is closed; a freed place is taken again', async () => {
    const sock = join(dir, 'ctl.sock');
    const sd = await start(['control_max_clients 2', `control_socket ${sock}`]);
    const port = sd.controlPort;
    const first = track(Client.tcp(port));
    const second = track(Client.unix(sock));
    assert.equal(await first.command('vlist'), VLIST);
    assert.equal(await second.command('vlist'), VLIST);
    for (const third of [track(Client.tcp(port)), track(Client.unix(sock))]) {
      await third.waitClosed(5000);
      assert.equal(third.data, 'Too many connections (max 2)\n');
    }
    assert.match(sd.stderr, /control port: connection limit 2 reached, refusing/);
    // The first two are still served.
    assert.equal(await first.command('vlist'), VLIST);
    first.close();
    // Once the daemon has seen the close, a new client is served.
    let reply = '';
    for (let i = 0; i < 50 && reply !== VLIST; i++) {
      reply = await controlCommand({ port }, 'vlist').catch(() => '');
      if (reply !== VLIST) await sleep(50);
    }
    assert.equal(reply, VLIST);
  });

  it('control_idle_timeout: an idle client is closed after the configured time, not before; a busy one is kept', async () => {
    const sd = await start(['control_idle_timeout 2']);
    const idle = track(Client.tcp(sd.controlPort));
    const busy = track(Client.tcp(sd.controlPort));
    const opened = await idle.openedAt;
    // The busy client sends a command every 0.5 s for 3 s, longer than the idle timeout.
    for (let i = 0; i < 6; i++) {
      assert.equal(await busy.command('vlist'), VLIST);
      await sleep(500);
    }
    assert.ok(!busy.closed, 'a client with traffic is not idle');
    await idle.waitClosed(10_000);
    const after = idle.closedAt! - opened;
    // The daemon's timer starts when it accepts, after our connect: never early (2% for timer granularity).
    assert.ok(after >= 2000 * 0.98, `idle client closed after ${after.toFixed(0)} ms, configured 2 s`);
    assert.equal(idle.data, '', 'closed without a reply');
    assert.equal(await busy.command('vlist'), VLIST);
  });

  it('control_socket: the control protocol answers on the unix socket path (mode 0600), removed at stop', async () => {
    const sock = join(dir, 'control.sock');
    const sd = await start([`control_socket ${sock}`]);
    assert.ok(lstatSync(sock).isSocket());
    assert.equal(lstatSync(sock).mode & 0o777, 0o600);
    assert.equal(await controlCommand({ path: sock }, 'vlist'), VLIST);
    assert.match(await controlCommand({ path: sock }, 'rlist vname=web'), /\nr:1 rname=b raddr=127\.0\.14\.2 rport=80 /);
    assert.match(sd.stderr, new RegExp(`Binding cmd interface to \\[${sock.replace(/[.]/g, '\\.')}\\]`));
    await sd.stop();
    assert.equal(sd.exitCode, 0);
    assert.ok(!existsSync(sock), 'the socket file is removed at stop');
  });

  it('metrics_listen_addr and metrics_listen_port: GET /metrics is served there', async () => {
    const mport = await freePort('127.0.14.9');
    const sd = await start(['metrics_listen_addr 127.0.14.9', `metrics_listen_port ${mport}`]);
    assert.match(sd.stderr, new RegExp(`Serving metrics on \\[http://127\\.0\\.14\\.9:${mport}/metrics\\]`));
    const res = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
      get({ host: '127.0.14.9', port: mport, path: '/metrics' }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (d: string) => (body += d));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, type: String(r.headers['content-type']), body }));
      }).on('error', reject);
    });
    assert.equal(res.status, 200);
    assert.match(res.type, /^text\/plain; version=0\.0\.4/);
    assert.match(res.body, /^surealived_virtuals 1$/m);
    assert.match(res.body, /^surealived_reals 2$/m);
    assert.match(res.body, /^surealived_real_configured_weight\{[^}]*real="b"[^}]*\} 20$/m);
  });

  for (const how of [{ name: '-n', args: ['-n'], cfg: [] }, { name: 'no_sync true', args: [], cfg: ['no_sync true'] }]) {
    it(`${how.name}: no hand-off file at all after state changes and an rset (and no crash, bug 11.4); the dumps are still written`, async () => {
      await listen('127.0.14.1'); // a answers, b is refused
      const sd = await start(how.cfg, how.args);
      await sd.waitLog(/Real: \[web:b - 192\.0\.2\.20:80:tcp 127\.0\.14\.2:80\] changed its test state to OFFLINE/);
      const reply = await controlCommand({ port: sd.controlPort }, 'rset vname=web raddr=127.0.14.1 rport=80 rstate=OFFLINE');
      assert.equal(reply, 'Set: rstate=OFFLINE, weight=10, inpercent=FALSE\n_SD_CMD_END_\n');
      await sleep(500); // more probes, and the turn in which an rset's diff would be written
      assert.ok(sd.running, 'still running');
      await sd.stop();
      assert.equal(sd.exitCode, 0);
      for (const f of ['ipvsfull.cfg', 'ipvsfull.reload', 'ipvsfull.lock', 'diffs']) assert.ok(!existsSync(join(dir, f)), `${f} must not exist`);
      // Only the hand-off is off: the state files follow the changes as usual.
      assert.equal(sd.file('offline.dump'), '192.0.2.20:80:0:0 - 127.0.14.2:80\n');
      assert.equal(sd.file('override.dump'), '192.0.2.20:80:0:0 - 127.0.14.1:80 - weight=10  rstate=OFFLINE\n');
    });
  }

  describe('offline.dump off (-k, use_offline_dump)', () => {
    /** Names a, the real that answers: if read, a starts offline (weight 0). */
    const STALE = '192.0.2.20:80:0:0 - 127.0.14.1:80\n';
    /** Start, see b go offline (a transition that writes offline.dump when it is on), stop. */
    const run = async (cfg: string[], args: string[]): Promise<{ firstFull: string; sd: SurealivedCli }> => {
      await listen('127.0.14.1');
      const sd = await start(cfg, args);
      const firstFull = sd.file('ipvsfull.cfg'); // the forced full write of the start, before any probe
      await sd.waitLog(/Real: \[web:b - .*\] changed its test state to OFFLINE/);
      await sleep(400);
      await sd.stop();
      assert.equal(sd.exitCode, 0);
      return { firstFull, sd };
    };

    it('baseline (offline.dump on): read at start (a starts offline) and rewritten at the transitions', async () => {
      writeFileSync(join(dir, 'offline.dump'), STALE);
      const { firstFull, sd } = await run([], []);
      assert.match(firstFull, /real rname=a raddr=127\.0\.14\.1 rport=80 rweight=0\n/);
      assert.match(sd.stderr, /Real: \[web:a - .*\] changed its test state to ONLINE/);
      assert.equal(sd.file('offline.dump'), '192.0.2.20:80:0:0 - 127.0.14.2:80\n');
    });

    for (const how of [{ name: '-k', args: ['-k'], cfg: [] }, { name: 'use_offline_dump f', args: [], cfg: ['use_offline_dump f'] }]) {
      it(`${how.name}: an existing offline.dump is not applied at start and not rewritten at transitions or stop`, async () => {
        writeFileSync(join(dir, 'offline.dump'), STALE);
        const mtime = statSync(join(dir, 'offline.dump')).mtimeMs;
        const { firstFull, sd } = await run(how.cfg, how.args);
        assert.match(firstFull, /real rname=a raddr=127\.0\.14\.1 rport=80 rweight=10\n/);
        assert.doesNotMatch(sd.stderr, /Real: \[web:a - .*\] changed its test state/);
        assert.equal(sd.file('offline.dump'), STALE);
        assert.equal(statSync(join(dir, 'offline.dump')).mtimeMs, mtime);
      });
    }

    it('-k: no offline.dump is created', async () => {
      await run([], ['-k']);
      assert.ok(!existsSync(join(dir, 'offline.dump')));
    });
  });
});
