// Guest-side scenario: the real surealived (tcp tester, real servers on loopback, control port) writes
// the hand-off and the real ipvssync carries it into the kernel; checks reals down/up, rset and edits.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { IpvsClient } from '../../../ipvs-netlink/index.js';
import type { IpvssyncCheckId } from './ipvssync-checks.js';
import { parseList } from './ipvsadm-parse.js';
import {
  expectedRows,
  handoffPaths,
  hostPort,
  ipvsadm,
  ipvsadmRows,
  kernelRows,
  rowDiff,
  sameRows,
  startIpvssync,
  startProc,
  waitFor,
  writeMainConfig,
  type HandoffVirtual,
  type Proc,
} from './ipvssync-lab.js';

export interface ScenarioContext {
  work: string;
  client: IpvsClient;
  check: (id: IpvssyncCheckId, body: () => Promise<void> | void) => Promise<boolean>;
  observe: (k: string, v: string | number) => void;
  track: (p: Proc) => Proc;
}

const CONTROL_PORT = 14337;

/** One control-port request (spec 9.1): a line out, the reply up to `_SD_CMD_END_` (or close) back. */
function control(line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host: '127.0.0.1', port: CONTROL_PORT });
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`control: no complete reply to ${JSON.stringify(line)} within 5 s (got ${JSON.stringify(got)})`));
    }, 5000);
    const finish = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(got);
    };
    s.on('connect', () => s.write(`${line}\n`));
    s.on('data', (b: Buffer) => {
      got += b.toString('utf8');
      if (got.includes('_SD_CMD_END_\n') || /^cmd_\w+: /.test(got)) finish();
    });
    s.on('end', finish);
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** A loopback TCP listener standing for a real server; `stop()` makes connects fail (RST). */
class RealServer {
  private server: Server | undefined;
  constructor(readonly addr: string, readonly port: number) {}
  async start(): Promise<void> {
    const s = createServer((sock) => {
      sock.on('error', () => undefined); // a tester may reset the connection: nothing to report
      sock.end();
    });
    await new Promise<void>((res, rej) => {
      s.once('error', rej);
      s.listen(this.port, this.addr, () => res());
    });
    this.server = s;
  }
  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((res) => s.close(() => res()));
  }
}

interface XmlReal {
  name: string;
  addr: string;
  port: number;
  weight: number;
}

function xmlOf(vs: readonly { v: HandoffVirtual; removeOnFail: boolean; reals: readonly XmlReal[] }[]): string {
  const out = ['<surealived>'];
  for (const { v, removeOnFail, reals } of vs) {
    out.push(
      `  <virtual name="${v.name}" addr="${v.addr}" port="${v.port}" proto="${v.proto}" sched="${v.sched}" rt="${v.rt}"${v.pers ? ` pers="${v.pers}"` : ''}>`,
      `    <tester proto="tcp" testport="${reals[0]!.port}" loopdelay="0.3" timeout="0.5" retries2ok="1" retries2fail="1" remove_on_fail="${removeOnFail ? 1 : 0}"/>`,
      ...reals.map((r) => `    <real name="${r.name}" addr="${r.addr}" port="${r.port}" testport="${r.port}" weight="${r.weight}"/>`),
      '  </virtual>',
    );
  }
  out.push('</surealived>');
  return out.join('\n') + '\n';
}

export async function runSurealivedScenario(ctx: ScenarioContext): Promise<void> {
  const { check, client: c } = ctx;
  const S = handoffPaths(ctx.work);
  mkdirSync(S.dir, { recursive: true });
  writeMainConfig(S, [
    'logging info',
    'listen_addr 127.0.0.1',
    `listen_port ${CONTROL_PORT}`,
    'startup_delay_ms 200',
    'loop_interval_ms 50',
    // Every op ipvssync applies is logged (at debug for full syncs): sd.edit reads them.
    'ipvssync_logging debug',
  ]);
  const webReals: XmlReal[] = [
    { name: 'w1', addr: '127.0.0.11', port: 8001, weight: 10 },
    { name: 'w2', addr: '127.0.0.12', port: 8002, weight: 20 },
    { name: 'w3', addr: '127.0.0.13', port: 8003, weight: 10 },
  ];
  const dbReals: XmlReal[] = [
    { name: 'd1', addr: '127.0.0.21', port: 9001, weight: 1 },
    { name: 'd2', addr: '127.0.0.22', port: 9002, weight: 2 },
  ];
  // IPv6: reals on ::1 (distinct ports); surealived hands it off as v6virtual/v6real and cmd=v6...
  const web6Reals: XmlReal[] = [
    { name: 'v1', addr: '::1', port: 8101, weight: 3 },
    { name: 'v2', addr: '::1', port: 8102, weight: 4 },
  ];
  const web: HandoffVirtual = { name: 'web', proto: 'tcp', addr: '10.20.0.1', port: 80, fwmark: 0, rt: 'dr', sched: 'wrr', reals: [] };
  const db: HandoffVirtual = { name: 'db', proto: 'tcp', addr: '10.20.0.2', port: 5432, fwmark: 0, rt: 'masq', sched: 'wlc', pers: 300, reals: [] };
  const web6: HandoffVirtual = { name: 'web6', proto: 'tcp', addr: '2001:db8:20::1', port: 80, fwmark: 0, rt: 'dr', sched: 'wrr', reals: [] };
  const xml = join(S.dir, 'services.xml');
  const writeXml = (): void =>
    writeFileSync(
      xml,
      xmlOf([
        { v: web, removeOnFail: false, reals: webReals },
        { v: db, removeOnFail: true, reals: dbReals },
        { v: web6, removeOnFail: false, reals: web6Reals },
      ]),
    );
  writeXml();

  const at = (v: HandoffVirtual, reals: readonly XmlReal[], w: readonly (number | null)[]): HandoffVirtual => ({
    ...v,
    reals: reals.flatMap((r, i) => (w[i] === null ? [] : [{ ...r, weight: w[i]! }])),
  });
  /** The desired kernel table: virtuals with reals at the given weights; `null` = absent. */
  const model = (webW: (number | null)[], dbW: (number | null)[], web6W: (number | null)[] = [3, 4]): HandoffVirtual[] => [
    at(web, webReals, webW),
    at(db, dbReals, dbW),
    at(web6, web6Reals, web6W),
  ];
  /** Both views of the kernel must show `want`: netlink (polled until equal) and ipvsadm -Sn. */
  const expectKernel = async (want: HandoffVirtual[], what: string): Promise<void> => {
    const rows = expectedRows(want);
    let have: string[] = [];
    const ok = await waitFor(async () => sameRows((have = await kernelRows(c)), rows), 20_000, 100);
    assert.ok(ok, `${what}: the kernel did not get there within 20 s\n${rowDiff(rows, have)}`);
    const adm = ipvsadmRows();
    const admWant = expectedRows(want, false);
    assert.ok(sameRows(adm, admWant), `${what}: ipvsadm -Sn differs\n${rowDiff(admWant, adm)}`);
    // And the operator's view: `ipvsadm -Ln` rows "<PROT> <vip:port> -> <rip:port>" with forward and weight.
    const FWD = { dr: 'Route', masq: 'Masq', tun: 'Tunnel' } as const;
    const listWant = want.flatMap((v) => v.reals.map((r) => `${v.proto.toUpperCase()} ${hostPort(v.addr, v.port)} -> ${hostPort(r.addr, r.port)} ${FWD[v.rt]} ${r.weight}`));
    const listHave = [...parseList(ipvsadm('-Ln'))].map(([k, cols]) => `${k} ${cols[0]} ${cols[1]}`);
    assert.deepEqual(listHave.sort(), listWant.sort(), `${what}: ipvsadm -Ln differs`);
  };

  const servers = new Map<string, RealServer>();
  for (const r of [...webReals, ...dbReals, ...web6Reals]) {
    const s = new RealServer(r.addr, r.port);
    await s.start();
    servers.set(r.name, s);
  }

  let sd: Proc | undefined;
  let sync: Proc | undefined;
  const logs = (): string => `--- surealived ---\n${sd?.log().slice(-2500) ?? ''}\n--- ipvssync ---\n${sync?.log().slice(-2500) ?? ''}`;
  const wrap = (f: () => Promise<void>) => async (): Promise<void> => {
    try {
      await f();
    } catch (e) {
      if (e instanceof Error) e.message += `\n${logs()}`;
      throw e;
    }
  };
  const sel = (v: HandoffVirtual, r: XmlReal): string => `vproto=${v.proto} vaddr=${v.addr} vport=${v.port} raddr=${r.addr} rport=${r.port}`;
  const rset = async (v: HandoffVirtual, r: XmlReal, what: string, expect: RegExp): Promise<void> => {
    const reply = await control(`rset ${sel(v, r)} ${what}`);
    assert.match(reply, expect, `rset ${what}: reply ${JSON.stringify(reply)}`);
  };

  try {
    await check('sd.start', wrap(async () => {
      sd = ctx.track(startProc(['dist/surealived/cli.js', '-c', S.config, xml], join(ctx.work, 'surealived.log')));
      assert.ok(await waitFor(() => existsSync(S.full) || sd!.exited(), 20_000), 'surealived wrote no ipvsfull.cfg within 20 s');
      assert.ok(!sd.exited(), 'surealived exited');
      sync = ctx.track(startIpvssync(S, join(ctx.work, 'ipvssync.log')));
      await expectKernel(model([10, 20, 10], [1, 2]), 'start');
    }));

    await check('sd.down', wrap(async () => {
      await servers.get('w2')!.stop();
      await servers.get('d2')!.stop();
      await expectKernel(model([10, 0, 10], [1, null]), 'w2 and d2 down');
    }));

    await check('sd.up', wrap(async () => {
      await servers.get('w2')!.start();
      await servers.get('d2')!.start();
      await expectKernel(model([10, 20, 10], [1, 2]), 'w2 and d2 up again');
    }));

    await check('sd.rset.weight', wrap(async () => {
      await rset(web, webReals[0]!, 'rweight=7', /^Set: rstate=ONLINE, weight=7, inpercent=FALSE\n_SD_CMD_END_\n$/);
      await rset(web, webReals[2]!, 'rweight=50%', /^Set: rstate=ONLINE, weight=50, inpercent=TRUE\n_SD_CMD_END_\n$/);
      await expectKernel(model([7, 20, 5], [1, 2]), 'rset rweight');
    }));

    await check('sd.rset.offline', wrap(async () => {
      await rset(web, webReals[0]!, 'rstate=OFFLINE', /^Set: rstate=OFFLINE, weight=7, inpercent=FALSE\n/);
      await expectKernel(model([0, 20, 5], [1, 2]), 'rset rstate=OFFLINE');
      await rset(web, webReals[2]!, 'rstate=DOWN', /^Set: rstate=DOWN, /);
      await rset(db, dbReals[0]!, 'rstate=DOWN', /^Set: rstate=DOWN, /);
      await expectKernel(model([0, 20, null], [null, 2]), 'rset rstate=DOWN');
      await rset(web, webReals[0]!, 'rstate=ONLINE', /^Set: rstate=ONLINE, weight=7, /);
      await rset(web, webReals[2]!, 'rstate=ONLINE', /^Set: rstate=ONLINE, weight=50, inpercent=TRUE\n/);
      await rset(db, dbReals[0]!, 'rstate=ONLINE', /^Set: rstate=ONLINE, /);
      await expectKernel(model([7, 20, 5], [1, 2]), 'rset rstate=ONLINE');
    }));

    await check('sd.edit', wrap(async () => {
      web.sched = 'lc';
      db.sched = 'sh';
      db.pers = 600;
      writeXml();
      assert.ok(sd && !sd.exited(), 'surealived is not running');
      assert.ok(sync && !sync.exited(), 'ipvssync is not running');
      const opsFrom = sync.log().length;
      sd.child.kill('SIGHUP');
      // The rset overrides survive the reload (override state is carried over).
      await expectKernel(model([7, 20, 5], [1, 2]), 'scheduler/persistence edit');
      assert.ok(!sd.exited(), 'surealived exited on SIGHUP');
      // The same final table would also come from a delete and re-add, which drops the service's
      // connections and counters: ipvssync's op log must show an edit of each service and nothing else.
      const ops = sync
        .log()
        .slice(opsFrom)
        .split('\n')
        .flatMap((l) => /IPVS ((?:add|edit|delete) (?:service|dest) .*)$/.exec(l)?.[1] ?? []);
      const touching = (vip: string): string[] => ops.filter((o) => o.includes(` ${vip} `) || o.endsWith(` ${vip}`));
      assert.deepEqual(touching('10.20.0.1:80'), ['edit service tcp 10.20.0.1:80 lc'], `web: ops ${JSON.stringify(ops)}`);
      assert.deepEqual(touching('10.20.0.2:5432'), ['edit service tcp 10.20.0.2:5432 sh persistent 600'], `db: ops ${JSON.stringify(ops)}`);
    }));

    await check('sd.ipv6', wrap(async () => {
      const v1 = web6Reals[0]!;
      // Diff files are read after each step: ipvssync deletes the older ones once a new full write rotates them.
      const diffLines = new Set<string>();
      const readDiffs = (): void => {
        for (const f of readdirSync(S.diffDir)) for (const l of readFileSync(join(S.diffDir, f), 'utf8').split('\n')) diffLines.add(l);
      };
      await servers.get('v2')!.stop();
      await expectKernel(model([7, 20, 5], [1, 2], [3, 0]), 'IPv6 real v2 down');
      readDiffs();
      await rset(web6, v1, 'rstate=DOWN', /^Set: rstate=DOWN, /);
      await expectKernel(model([7, 20, 5], [1, 2], [null, 0]), 'IPv6 real v1 rset DOWN');
      readDiffs();
      await servers.get('v2')!.start();
      await rset(web6, v1, 'rstate=ONLINE', /^Set: rstate=ONLINE, /);
      await expectKernel(model([7, 20, 5], [1, 2], [3, 4]), 'IPv6 reals back');
      readDiffs();
      // All of it went through the form the original ipvssync skips: no plain line names an IPv6 address.
      const full = readFileSync(S.full, 'utf8');
      assert.match(full, /^v6virtual vname=web6 vproto=tcp vaddr=2001:db8:20::1 vport=80 /m);
      assert.match(full, new RegExp(`^v6real rname=v1 raddr=::1 rport=${v1.port} `, 'm'));
      const diffs = [...diffLines];
      for (const cmd of ['addreal', 'chgreal', 'delreal']) {
        assert.ok(diffs.some((l) => new RegExp(`^cmd=v6${cmd} vname=web6 .* rname=v[12] raddr=::1 `).test(l)), `no cmd=v6${cmd} line for web6`);
      }
      const plain = [...full.split('\n'), ...diffs].filter((l) => /^(virtual|real|cmd=(add|chg|del)real) /.test(l) && /addr=[^ ]*:/.test(l));
      assert.deepEqual(plain, [], 'IPv6 entries in the form the original ipvssync half-reads');
    }));
  } finally {
    await sync?.stop('SIGTERM');
    await sd?.stop('SIGTERM');
    for (const s of servers.values()) await s.stop();
    ctx.observe('surealived log tail', sd?.log().slice(-1500) ?? '');
  }
}
