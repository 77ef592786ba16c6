// The embedded demo (`npm run demo`): starts demo real servers on loopback, runs the real surealived
// CLI on examples/demo.xml with every file under a temporary directory, shows the hand-off it writes,
// takes one web server down and brings it back, then stops. Needs no set-up and no IPVS.

import { spawn, spawnSync } from 'node:child_process';
import { controlCommand } from '../common/control-client.js';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDemoServers } from './demo-servers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(root, 'dist/surealived/cli.js');
const ipvssyncCli = join(root, 'dist/ipvssync/cli.js');
const xml = join(root, 'examples/demo.xml');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function banner(s: string): void {
  process.stdout.write(`\n==== ${s} ${'='.repeat(Math.max(0, 70 - s.length))}\n`);
}

/** Wait until `fn` is true, at most `ms`. */
async function until(fn: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await sleep(100);
  }
  return fn();
}

/** Run a command without blocking this process (the demo servers live here), collecting its output. */
function run(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
    c.on('exit', () => {
      clearTimeout(t);
      resolve(out);
    });
  });
}

function diffText(dir: string): string {
  return readdirSync(dir)
    .filter((f) => f.startsWith('diff_sync.'))
    .sort()
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('');
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'surealived-demo-'));
  const cfg = join(work, 'surealived.cfg');
  const diffs = join(work, 'diffs');
  writeFileSync(
    cfg,
    [
      `log stderr`,
      `use_log true`,
      `logging info`,
      `ipvssync_log stderr`,
      `ipvssync_logging warn`,
      `listen_addr 127.0.0.1`,
      `listen_port 0`,
      `startup_delay_ms 500`,
      `lock_sync_file ${work}/ipvsfull.lock`,
      `full_sync_file ${work}/ipvsfull.cfg`,
      `full_reload_file ${work}/ipvsfull.reload`,
      `diff_sync_dir ${diffs}`,
      `offline_dump ${work}/offline.dump`,
      `override_dump ${work}/override.dump`,
      `stats_dump ${work}/stats.dump`,
      `notify_dump ${work}/notify.dump`,
      `stats_dir ${work}/stats`,
      `debug_comm_path ${work}/comm`,
      '',
    ].join('\n'),
  );

  banner('starting demo real servers on loopback');
  const servers = await startDemoServers();
  for (const s of servers.describe()) process.stdout.write(`  ${s}\n`);

  banner('surealived -t (configuration test)');
  const t = spawnSync(process.execPath, [cli, '-c', cfg, '-t', xml], { encoding: 'utf8' });
  process.stdout.write(t.stderr);

  banner('starting surealived on examples/demo.xml');
  const child = spawn(process.execPath, [cli, '-c', cfg, xml], { stdio: ['ignore', 'inherit', 'pipe'] });
  let controlPort = 0;
  child.stderr.on('data', (d: Buffer) => {
    const text = d.toString();
    const m = /control port listening on [^ ]+:(\d+)/.exec(text);
    if (m) controlPort = Number(m[1]);
    process.stdout.write(text.replace(/^(?=.)/gm, '  [surealived] '));
  });
  const full = join(work, 'ipvsfull.cfg');
  await until(() => existsSync(full), 5000);
  await sleep(2500);

  banner(`hand-off for ipvssync: ${full}`);
  process.stdout.write(readFileSync(full, 'utf8'));

  banner(`control port: printf "rlist vname=web\\n" | nc 127.0.0.1 ${controlPort}`);
  process.stdout.write(await controlCommand({ port: controlPort }, 'rlist vname=web'));

  banner('web2 starts answering 503: out after retries2fail=2 failed probes');
  let seen = diffText(diffs).length;
  servers.setHttpStatus('127.0.0.12', 503);
  await until(() => /cmd=chgreal vname=web .*rname=web2 .*rweight=0/.test(diffText(diffs).slice(seen)), 6000);
  process.stdout.write(`diff lines written:\n${diffText(diffs).slice(seen)}`);

  banner('web2 recovers: one good probe brings it back (retries2ok=1)');
  seen = diffText(diffs).length;
  servers.setHttpStatus('127.0.0.12', 200);
  await until(() => /rname=web2 .*rweight=10\n/.test(diffText(diffs).slice(seen)), 6000);
  process.stdout.write(`diff lines written:\n${diffText(diffs).slice(seen)}`);

  banner('operator drains web3: rset vname=web raddr=127.0.0.13 rport=80 rstate=OFFLINE');
  seen = diffText(diffs).length;
  process.stdout.write(await controlCommand({ port: controlPort }, 'rset vname=web raddr=127.0.0.13 rport=80 rstate=OFFLINE'));
  await until(() => diffText(diffs).length > seen, 3000);
  process.stdout.write(`diff lines written:\n${diffText(diffs).slice(seen)}`);

  if (existsSync(ipvssyncCli)) {
    banner('ipvssync --dry-run --once --list: what the kernel table would become');
    process.stdout.write(await run([ipvssyncCli, '-c', cfg, '--dry-run', '--once', '--list']));
  }

  banner('stopping');
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await servers.close();
  rmSync(work, { recursive: true, force: true });
  process.stdout.write('demo finished\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`demo failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
