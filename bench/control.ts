// `npm run bench:control`: surealived with 10,000 reals under test (tcp, loopdelay 1) against the loopback
// benchmark server; 1,000 `rset` commands sent as fast as the control port takes them. Prints commands
// per second and how late probes started during the burst versus before it (target: >= 2,000 rset/s,
// no probe more than 100 ms late).
// Options: --reals 10000 --commands 1000 --connections 4

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { realAddr } from './addresses.js';
import { shebangFlags } from './daemon-flags.js';
import { controlCommand } from '../common/control-client.js';
/** A free TCP port on 127.0.0.1 (bound, then released). */
import { refusedPort as freePort } from '../test/helpers/servers.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const cli = join(here, '../surealived/cli.js');
const SERVER_PORT = 18901;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Send `lines` pipelined on one connection; resolve when as many replies have arrived. */
function burst(port: number, lines: readonly string[]): Promise<{ replies: number; errors: string[] }> {
  return new Promise((resolve, reject) => {
    const c = createConnection({ host: '127.0.0.1', port });
    let buf = '';
    let replies = 0;
    const errors: string[] = [];
    c.on('data', (d) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (line === '_SD_CMD_END_') replies++;
        else if (!line.startsWith('Set: ')) {
          errors.push(line);
          replies++;
        }
      }
      if (replies >= lines.length) {
        c.end();
        resolve({ replies, errors });
      }
    });
    c.on('error', reject);
    c.write(lines.map((l) => `${l}\n`).join(''));
  });
}

/** The probe start lateness histogram from `stats json` (cheap, unlike `metrics` over 10,000 reals). */
async function lateness(port: number): Promise<Map<string, number>> {
  const text = await controlCommand({ port }, 'stats json');
  const j = JSON.parse(text.slice(0, text.indexOf('\n'))) as { probe_start_lateness?: { le: Record<string, number>; max_s: number } };
  const buckets = new Map<string, number>(Object.entries(j.probe_start_lateness?.le ?? {}));
  buckets.set('max', j.probe_start_lateness?.max_s ?? NaN);
  return buckets;
}

function describe(before: Map<string, number>, after: Map<string, number>): string {
  const d = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
  const total = d('+Inf');
  const over100 = total - d('0.1');
  const under10 = d('0.01');
  return `${total} probes started, ${((under10 / Math.max(1, total)) * 100).toFixed(1)}% within 10 ms, ${over100} later than 100 ms`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { reals: { type: 'string' }, commands: { type: 'string' }, connections: { type: 'string' } } });
  const n = Number(values.reals ?? 10000);
  const commands = Number(values.commands ?? 1000);
  const conns = Number(values.connections ?? 4);
  const work = mkdtempSync(join(tmpdir(), 'sd-bench-ctl-'));
  const ctlPort = await freePort();
  const out = ['<surealived>'];
  for (let v = 0; v * 100 < n; v++) {
    out.push(`<virtual name="v${v}" addr="198.18.${Math.floor(v / 250)}.${(v % 250) + 1}" port="80" proto="tcp" sched="wrr" rt="dr">`);
    out.push(`<tester proto="tcp" testport="${SERVER_PORT}" loopdelay="1" timeout="2" retries2ok="1" retries2fail="2"/>`);
    for (let i = v * 100; i < Math.min(n, (v + 1) * 100); i++) out.push(`<real name="r${i}" addr="${realAddr(i)}" port="80" weight="10"/>`);
    out.push('</virtual>');
  }
  out.push('</surealived>\n');
  writeFileSync(join(work, 'config.xml'), out.join('\n'));
  writeFileSync(
    join(work, 'surealived.cfg'),
    ['log stderr', 'logging warn', `listen_port ${ctlPort}`, ...['lock_sync_file ipvsfull.lock', 'full_sync_file ipvsfull.cfg', 'full_reload_file ipvsfull.reload', 'diff_sync_dir diffs', 'offline_dump offline.dump', 'override_dump override.dump', 'stats_dump stats.dump', 'notify_dump notify.dump', 'stats_dir stats'].map((l) => l.replace(' ', ` ${work}/`)), ''].join('\n'),
  );
  const server: ChildProcess = fork(join(here, 'server.js'), [String(SERVER_PORT), String(n)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise<void>((resolve) => server.on('message', (m: { ready?: number }) => m.ready !== undefined && resolve()));
  const sd = spawn(process.execPath, [...shebangFlags(cli), cli, '-c', join(work, 'surealived.cfg'), join(work, 'config.xml')], { stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    for (let i = 0; i < 100; i++) {
      await sleep(200);
      if (await controlCommand({ port: ctlPort }, 'vlist').then(() => true, () => false)) break;
    }
    // Warm-up: start-up (XML load, JIT, the first spread round) leaves probes behind schedule for a
    // few seconds; measure only once no probe started more than 100 ms late for 3 s in a row.
    let calm = 0;
    for (let i = 0; i < 60 && calm < 3; i++) {
      await sleep(1000);
      const max = (await lateness(ctlPort)).get('max') ?? 1;
      calm = max <= 0.1 ? calm + 1 : 0;
    }
    const b0 = await lateness(ctlPort);
    await sleep(3000);
    const b1 = await lateness(ctlPort);

    // 1,000 rsets over a few pipelined connections: weights and OFFLINE/ONLINE on distinct reals.
    const lines: string[][] = Array.from({ length: conns }, () => []);
    for (let i = 0; i < commands; i++) {
      const r = (i * 7) % n;
      const change = i % 3 === 0 ? 'rstate=OFFLINE' : i % 3 === 1 ? `rweight=${(i % 90) + 10}%` : 'rstate=ONLINE rweight=10';
      lines[i % conns]!.push(`rset vproto=tcp vaddr=198.18.${Math.floor(Math.floor(r / 100) / 250)}.${(Math.floor(r / 100) % 250) + 1} vport=80 raddr=${realAddr(r)} rport=80 ${change}`);
    }
    const t0 = performance.now();
    const results = await Promise.all(lines.map((l) => burst(ctlPort, l)));
    const secs = (performance.now() - t0) / 1000;
    await sleep(500);
    const b2 = await lateness(ctlPort);
    const errors = results.flatMap((r) => r.errors);
    process.stdout.write(`surealived control-port benchmark: ${n} reals under test (tcp, loopdelay 1), ${commands} rset over ${conns} connections\n`);
    process.stdout.write(`target: >= 2,000 rset/s with no probe more than 100 ms late (the original: 16 clients, one command per read)\n\n`);
    process.stdout.write(`rset commands: ${commands} in ${secs.toFixed(3)} s = ${(commands / secs).toFixed(0)} rset/s, ${errors.length} errors${errors.length ? ` (first: ${errors[0]})` : ''}\n`);
    process.stdout.write(`probe start lateness, 3 s before the burst: ${describe(b0, b1)}\n`);
    process.stdout.write(`probe start lateness, during the burst:     ${describe(b1, b2)}\n`);
    if (b2.has('max')) process.stdout.write(`largest probe start lateness during the burst: ${((b2.get('max') ?? 0) * 1000).toFixed(1)} ms\n`);
  } finally {
    sd.kill('SIGKILL');
    server.kill('SIGKILL');
    await sleep(200);
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
