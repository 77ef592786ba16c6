// The status page in a real browser (headless Chromium) against a running surealived process probing
// real servers on loopback: each real in its state, a real whose server stops turning down within its
// detection time, names shown as text. Screenshots are saved as test artifacts.

import { strict as assert } from 'node:assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { controlCommand } from '../../common/control-client.js';
import type { StatusOverview, VirtualPage } from '../../surealived/status/model.js';
import { browserUnavailable, dumpDom, ensureBrowserTools, screenshot } from '../helpers/browser.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = join(root, 'dist/surealived/cli.js');
const ARTIFACTS = process.env['TEST_ARTIFACTS'] ?? join(tmpdir(), 'surealived-test-artifacts');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function httpReal(addr: string, port: number, status: number): Promise<HttpServer> {
  const s = createHttpServer((_req, res) => res.writeHead(status, { 'Content-Type': 'text/plain' }).end('x\n'));
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.listen(port, addr, () => resolve(s));
  });
}

/** The rows of reals in a dumped DOM: data-real (unescaped) -> data-state, and the row's text. */
function rows(dom: string, section: 'problems' | 'virtuals'): Map<string, { state: string; text: string }> {
  const start = dom.indexOf(`<div id="${section}">`);
  assert.ok(start >= 0, `no #${section} in the page`);
  const part = dom.slice(start, section === 'problems' ? dom.indexOf('id="virtuals-title"', start) : undefined);
  const out = new Map<string, { state: string; text: string }>();
  const unescape = (s: string): string => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  for (const m of part.matchAll(/<tr class="[^"]*" data-real="([^"]*)" data-state="([^"]*)">(.*?)<\/tr>/g)) {
    out.set(unescape(m[1]!), { state: m[2]!, text: unescape(m[3]!.replace(/<[^>]*>/g, ' ')) });
  }
  return out;
}

describe('status page in headless Chromium against a running surealived', function () {
  this.timeout(15 * 60_000);
  // Names cannot contain whitespace, '=' or '/' (the hand-off format), but markup still fits.
  const EVIL = `<b>bold<script>&"'`;
  let dir: string;
  let child: ChildProcess | undefined;
  let httpPort: number;
  let controlPort: number;
  let stderr = '';
  const servers = new Map<string, HttpServer | Server>();
  let base: string;

  const json = async <T>(q: string): Promise<T> => (await (await fetch(`${base}/status.json${q}`)).json()) as T;

  before(async function () {
    const why = browserUnavailable();
    if (why) this.skip();
    ensureBrowserTools('chromium');
    dir = mkdtempSync(join(tmpdir(), 'sd-status-'));
    mkdirSync(ARTIFACTS, { recursive: true });
    const probePort = await freePort();
    servers.set('a-ok', await httpReal('127.0.77.1', probePort, 200));
    servers.set('a-503', await httpReal('127.0.77.2', probePort, 503));
    servers.set('a-stops', await httpReal('127.0.77.3', probePort, 200));
    for (const [name, addr] of [['b1', '127.0.77.4'], ['evil', '127.0.77.5']] as const) {
      const s = createServer((c) => c.on('error', () => undefined).end());
      await new Promise<void>((r) => s.listen(probePort, addr, () => r()));
      servers.set(name, s);
    }
    httpPort = await freePort();
    controlPort = await freePort();
    const cfg = join(dir, 'surealived.cfg');
    writeFileSync(
      cfg,
      [
        `listen_port ${controlPort}`,
        `metrics_listen_port ${httpPort}`,
        'startup_delay_ms 100',
        ...['lock_sync_file ipvsfull.lock', 'full_sync_file ipvsfull.cfg', 'full_reload_file ipvsfull.reload', 'diff_sync_dir diffs', 'offline_dump offline.dump', 'override_dump override.dump', 'stats_dump stats.dump', 'notify_dump notify.dump', 'stats_dir stats'].map((l) =>
          l.replace(' ', ` ${dir}/`),
        ),
        '',
      ].join('\n'),
    );
    const xmlName = EVIL.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
    const xml = join(dir, 'services.xml');
    writeFileSync(
      xml,
      `<surealived>
<virtual name="web" addr="192.0.2.10" port="80" proto="tcp" sched="wrr" rt="dr">
  <tester proto="http" testport="${probePort}" loopdelay="1" timeout="1" retries2ok="1" retries2fail="2" url="/health" host="www.test"/>
  <real name="a-ok" addr="127.0.77.1" port="80" weight="10"/>
  <real name="a-503" addr="127.0.77.2" port="80" weight="10"/>
  <real name="a-stops" addr="127.0.77.3" port="80" weight="10"/>
</virtual>
<virtual name="mail" addr="192.0.2.25" port="25" proto="tcp" sched="wlc" rt="dr">
  <tester proto="tcp" testport="${probePort}" loopdelay="1" timeout="1" retries2ok="1" retries2fail="2"/>
  <real name="b1" addr="127.0.77.4" port="25" weight="7"/>
  <real name="${xmlName}" addr="127.0.77.5" port="25" weight="3"/>
</virtual>
</surealived>
`,
    );
    child = spawn(process.execPath, [cli, '-c', cfg, xml], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    base = `http://127.0.0.1:${httpPort}`;
    for (let i = 0; ; i++) {
      try {
        const o = await json<StatusOverview>('');
        if (o.counts.pending === 0) break;
      } catch {
        // not listening yet
      }
      assert.ok(i < 300 && child!.exitCode === null, `surealived did not probe every real within 30 s:\n${stderr}`);
      await sleep(100);
    }
  });

  after(async () => {
    child?.kill('SIGTERM');
    if (child && child.exitCode === null) await new Promise((r) => child!.once('exit', r));
    for (const s of servers.values()) s.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows every real in its state with its detail and operator override, names as text, and refreshes by itself', async () => {
    const reply = await controlCommand({ port: controlPort }, 'rset vname=mail raddr=127.0.77.4 rport=25 rstate=DOWN rweight=50%');
    assert.match(reply, /^Set: rstate=DOWN/);
    const url = `${base}/?open=0,1&refresh=1`;
    const dom = await dumpDom({ url, budgetMs: 5000 });
    const reals = rows(dom, 'virtuals');
    assert.deepEqual(
      [...reals].map(([name, r]) => [name, r.state]),
      [
        ['a-ok', 'up'],
        ['a-503', 'down'],
        ['a-stops', 'up'],
        ['b1', 'disabled'],
        [EVIL, 'up'],
      ],
    );
    assert.match(reals.get('a-503')!.text, /failed: status 503, expected 200/);
    assert.match(reals.get('a-ok')!.text, /10 \/ 10/);
    assert.match(reals.get('b1')!.text, /0 \/ 7 +DOWN, weight 50%/);
    // The name is text: escaped in the DOM, never an element.
    assert.ok(!dom.includes('<b>bold'), 'no element from a name');
    assert.ok(dom.includes(`&lt;b&gt;bold&lt;script&gt;&amp;"'`), 'the name is shown as text');
    const problems = rows(dom, 'problems');
    assert.deepEqual([...problems.keys()], ['a-503', 'b1']);
    const refreshes = Number(/data-refreshes="(\d+)"/.exec(dom)?.[1]);
    assert.ok(refreshes >= 2, `the page refreshed itself ${refreshes} times in 5 s of virtual time`);
    const desktop = join(ARTIFACTS, 'status-page.png');
    const phone = join(ARTIFACTS, 'status-page-phone.png');
    await screenshot({ url, budgetMs: 3000 }, desktop);
    await screenshot({ url, budgetMs: 3000, windowSize: [390, 1100] }, phone);
    assert.ok(statSync(desktop).size > 10_000 && statSync(phone).size > 10_000);
    console.log(`      screenshots: ${desktop} ${phone}`);
  });

  it('a real whose server stops turns down on the page within its detection time', async () => {
    const before = await json<VirtualPage>('?virtual=0');
    assert.equal(before.reals.find((r) => r.name === 'a-stops')!.state, 'up');
    const detectS = before.virtual.detect_s;
    const s = servers.get('a-stops') as HttpServer;
    const stoppedAt = Date.now();
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
    servers.delete('a-stops');
    let downAt: number | undefined;
    for (let i = 0; i < 600 && downAt === undefined; i++) {
      const page = await json<VirtualPage>('?virtual=0&state=down');
      const r = page.reals.find((x) => x.name === 'a-stops');
      // When it changed, by the daemon's own account (not when we happened to look).
      if (r) downAt = Date.now() - r.changed_s_ago! * 1000;
      else await sleep(100);
    }
    assert.ok(downAt !== undefined, 'a-stops never turned down');
    const tookS = (downAt - stoppedAt) / 1000;
    // The tracker samples every 0.5 s; a busy shared machine gets a further 2 s.
    assert.ok(tookS <= detectS + 2.5, `down after ${tookS} s, detection time ${detectS} s`);
    const url = `${base}/?open=0`;
    const dom = await dumpDom({ url, budgetMs: 3000 });
    const a = rows(dom, 'virtuals').get('a-stops');
    assert.equal(a?.state, 'down');
    assert.match(a.text, /failed: /);
    assert.ok(rows(dom, 'problems').has('a-stops'));
    const shot = join(ARTIFACTS, 'status-page-real-down.png');
    await screenshot({ url, budgetMs: 3000 }, shot);
    console.log(`      a-stops down ${tookS.toFixed(1)} s after its server stopped (detection time ${detectS} s); screenshot: ${shot}`);
  });

  it('/status.json answers 400 for a bad query and 404 for a virtual that does not exist', async () => {
    const bad = await fetch(`${base}/status.json?virtual=x`);
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { error: 'virtual: expected a non-negative integer, got "x"' });
    const missing = await fetch(`${base}/status.json?virtual=9`);
    assert.equal(missing.status, 404);
    const page = await fetch(`${base}/`);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'sha256-/);
  });
});
