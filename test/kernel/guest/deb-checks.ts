// Runs INSIDE the lab guest (a throwaway root: the host root read-only under a tmpfs overlay), called by
// test/packaging/deb.test.ts: installs the package with dpkg -i, checks its files, runs the daemons by
// their units' own ExecStart lines with the units' user and capabilities, talks to them, then removes
// and purges it. Writes its report ({ checks: [{ id, ok, ms, detail }], ... }, report.ts) to argv[3].
//   node deb-checks.js <package.deb> <report.json>
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { GuestReportWriter } from './report.js';

// The ids test/packaging/deb.test.ts expects, one `it` each (titles there).
type DebCheckId = 'install' | 'files' | 'user' | 'configTest' | 'manPages' | 'unitsVerify' | 'surealived' | 'ipvssync' | 'ssyncd' | 'remove' | 'purge';
const CHECK_COUNT = 11;

const [deb, reportPath] = process.argv.slice(2);
if (!deb || !reportPath) {
  process.stderr.write('usage: deb-checks.js <package.deb> <report.json>\n');
  process.exit(2);
}
const g = new GuestReportWriter<DebCheckId>(reportPath);
const checks = g.report.checks;
const save = (): void => g.save();
const check = (id: DebCheckId, body: () => Promise<void> | void): Promise<boolean> => g.check(id, body);

function fail(msg: string): never {
  throw new Error(msg);
}

/** Runs a command; throws with its output unless it exits 0. */
function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 120_000 });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')}: exit ${r.status}${r.error ? ` (${r.error.message})` : ''}\n${out.slice(-3000)}`);
  return out;
}

function mode(path: string): { mode: string; owner: string } {
  const st = statSync(path);
  const owner = sh('stat', ['-c', '%U:%G', path]).trim();
  return { mode: (st.mode & 0o7777).toString(8).padStart(4, '0'), owner };
}

function expectMode(path: string, want: string, owner: string): void {
  if (!existsSync(path)) fail(`${path} missing`);
  const m = mode(path);
  if (m.mode !== want || m.owner !== owner) fail(`${path}: ${m.mode} ${m.owner}, want ${want} ${owner}`);
}

/** `Key=value` lines of a unit's [Service] section (several for ExecStartPre). */
function unitLines(unit: string, key: string): string[] {
  return readFileSync(`/lib/systemd/system/${unit}`, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

/** A unit's command line as systemd would split it, with $VARS from the unit's EnvironmentFile. */
function unitArgv(line: string, env: Record<string, string>): string[] {
  const cmd = line.replace(/^[-+@!:]+/, '');
  return cmd
    .split(/\s+/)
    .filter((w) => w !== '')
    .flatMap((w) => (/^\$\w+$/.test(w) ? (env[w.slice(1)] ?? '').split(/\s+/).filter((x) => x !== '') : [w]));
}

/** setpriv words that give a process what the unit gives it: User=, CapabilityBoundingSet=, AmbientCapabilities=. */
function privWords(unit: string): string[] {
  const user = unitLines(unit, 'User')[0];
  const bounding = (unitLines(unit, 'CapabilityBoundingSet')[0] ?? '').split(/\s+/).filter((c) => c !== '');
  const ambient = (unitLines(unit, 'AmbientCapabilities')[0] ?? '').split(/\s+/).filter((c) => c !== '');
  const caps = (l: string[]): string => l.map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');
  const w = ['--no-new-privs', '--bounding-set', bounding.length ? `-all,${caps(bounding)}` : '-all'];
  if (user) w.push('--reuid', user, '--regid', user, '--init-groups');
  if (ambient.length) w.push('--inh-caps', caps(ambient), '--ambient-caps', caps(ambient));
  return w;
}

const children: ChildProcess[] = [];
/** Starts a unit's ExecStart line the way systemd would (user, capabilities); its output goes to a log. */
function startUnit(unit: string, env: Record<string, string> = {}): { child: ChildProcess; output: () => string } {
  const argv = unitArgv(unitLines(unit, 'ExecStart')[0] ?? fail(`${unit}: no ExecStart`), env);
  let out = '';
  const child = spawn('setpriv', [...privWords(unit), '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  children.push(child);
  return { child, output: () => `${argv.join(' ')} (${privWords(unit).join(' ')}):\n${out.slice(-2000)}` };
}

function runPre(unit: string): void {
  for (const line of unitLines(unit, 'ExecStartPre')) {
    const argv = unitArgv(line, {});
    sh('setpriv', [...privWords(unit), '--', ...argv]);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined> | T | undefined, why: () => string): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) fail(`${what}: not within ${timeoutMs} ms\n${why()}`);
    await sleep(500);
  }
}

function control(line: string): Promise<string | undefined> {
  return new Promise((res) => {
    const s = connect({ host: '127.0.0.1', port: 1337 });
    let text = '';
    s.on('connect', () => s.write(`${line}\n`));
    s.on('data', (b) => {
      text += b.toString();
      if (text.includes('_SD_CMD_END_')) {
        s.destroy();
        res(text);
      }
    });
    s.on('error', () => res(undefined));
    s.setTimeout(5000, () => {
      s.destroy();
      res(undefined);
    });
  });
}

const PROGRAMS = ['surealived', 'ipvssync', 'ssyncd', 'ssyncdctl'];
const UNITS = ['surealived.service', 'ipvssync.service', 'ssyncd.service'];
const MAN = ['man8/surealived.8', 'man8/ipvssync.8', 'man8/ssyncd.8', 'man8/ssyncdctl.8', 'man5/surealived.cfg.5', 'man5/surealived.xml.5'];
const CONFFILES = ['/etc/surealived/surealived.cfg', '/etc/surealived/surealived.xml', '/etc/ssyncd/ssyncd.cfg', '/etc/default/ssyncd', '/etc/logrotate.d/surealived-ts'];

async function main(): Promise<void> {
  await check('install', () => {
    sh('dpkg', ['-i', deb!]);
    const status = sh('dpkg-query', ['-W', '-f=${Status} ${Version}', 'surealived-ts']);
    if (!status.startsWith('install ok installed')) fail(status);
  });
  if (!checks[0]!.ok) return;

  await check('files', () => {
    for (const p of PROGRAMS) {
      expectMode(`/usr/sbin/${p}`, '0755', 'root:root');
      if (sh('sh', ['-c', `command -v ${p}`]).trim() !== `/usr/sbin/${p}`) fail(`${p} is not /usr/sbin/${p} on the PATH`);
    }
    for (const f of CONFFILES) expectMode(f, '0644', 'root:root');
    const conffiles = readFileSync('/var/lib/dpkg/info/surealived-ts.conffiles', 'utf8').trim().split('\n').sort();
    if (JSON.stringify(conffiles) !== JSON.stringify([...CONFFILES].sort())) fail(`conffiles: ${conffiles.join(' ')}`);
    for (const u of UNITS) expectMode(`/lib/systemd/system/${u}`, '0644', 'root:root');
    for (const m of MAN) expectMode(`/usr/share/man/${m}.gz`, '0644', 'root:root');
    expectMode('/usr/lib/surealived-ts/build/Release/prober.node', '0644', 'root:root');
    expectMode('/usr/share/doc/surealived-ts/copyright', '0644', 'root:root');
    // Nothing from the build machine's home or checkout, nor developer tooling.
    // (The usage texts' examples name /root/ and /home/ paths, as the original's: not looked for.)
    const leaks = spawnSync('grep', ['-rlE', `${process.cwd()}|surealived-ts-build\\.|\\.cache/node-gyp|/\\.npm/`, '/usr/lib/surealived-ts'], { encoding: 'utf8' }).stdout.trim();
    if (leaks) fail(`files naming build paths:\n${leaks}`);
    for (const dev of ['typescript', 'mocha', '@types']) {
      if (existsSync(`/usr/lib/surealived-ts/node_modules/${dev}`)) fail(`dev dependency ${dev} shipped`);
    }
  });

  await check('user', () => {
    const pw = sh('getent', ['passwd', 'surealived']).trim().split(':');
    if (Number(pw[2]) >= 1000) fail(`surealived is not a system user: ${pw.join(':')}`);
    if (!/nologin|false/.test(pw[6] ?? '')) fail(`surealived has a login shell: ${pw[6]}`);
    for (const d of ['/var/lib/surealived', '/var/lib/surealived/diffs', '/var/lib/surealived/stats', '/var/log/surealived/comm', '/var/log/surealived/stats']) {
      expectMode(d, '0755', 'surealived:surealived');
    }
    expectMode('/var/log/surealived', '0750', 'surealived:surealived');
  });

  await check('configTest', () => {
    sh('surealived', ['-t', '/etc/surealived/surealived.xml']);
  });

  await check('manPages', () => {
    for (const m of MAN) {
      const page = m.split('/')[1]!;
      const out = sh('man', ['-P', 'cat', page.slice(-1), page.replace(/\.\d$/, '')]);
      if (!out.includes('NAME')) fail(`man ${page}: no NAME section`);
    }
  });

  await check('unitsVerify', () => {
    const which = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' }).stdout.trim();
    if (!which) fail('systemd-analyze is not available in the guest');
    const out = sh('systemd-analyze', ['verify', ...UNITS.map((u) => `/lib/systemd/system/${u}`)]);
    if (out.trim() !== '') fail(`systemd-analyze verify printed:\n${out}`);
  });

  // What an operator does first: describe the services. Loopback reals with the no-test tester (the
  // guest has no network; nothing is probed) and a virtual in TEST-NET, only written into IPVS.
  writeFileSync(
    '/etc/surealived/surealived.xml',
    `<surealived>
  <virtual name="web" addr="192.0.2.10" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester proto="no-test" loopdelay="1" timeout="1" retries2ok="1" retries2fail="1"/>
    <real name="web1" addr="127.0.0.2" port="80" weight="10"/>
  </virtual>
</surealived>
`,
  );
  await check('surealived', async () => {
    runPre('surealived.service');
    const d = startUnit('surealived.service');
    const reply = await until('vlist on 127.0.0.1:1337', 60_000, () => control('vlist'), d.output);
    if (!/web/.test(reply)) fail(`vlist: ${reply}`);
    const uid = sh('id', ['-u', 'surealived']).trim();
    const status = readFileSync(`/proc/${d.child.pid}/status`, 'utf8');
    if (/Uid:\s*(\d+)/.exec(status)?.[1] !== uid) fail(`surealived does not run as uid ${uid}:\n${status.slice(0, 400)}`);
    if (/CapEff:\s*([0-9a-f]+)/.exec(status)?.[1] !== '0000000000000000') fail('surealived has capabilities');
    await until('ipvsfull.cfg', 30_000, () => (existsSync('/var/lib/surealived/ipvsfull.cfg') ? true : undefined), d.output);
  });

  await check('ipvssync', async () => {
    runPre('ipvssync.service');
    const d = startUnit('ipvssync.service');
    await until('192.0.2.10:80 -> 127.0.0.2:80 in ipvsadm -Ln', 60_000, () => {
      const t = spawnSync('ipvsadm', ['-Ln'], { encoding: 'utf8' }).stdout;
      return /192\.0\.2\.10:80[\s\S]*127\.0\.0\.2:80/.test(t) ? t : undefined;
    }, () => `${d.output()}\n${spawnSync('ipvsadm', ['-Ln'], { encoding: 'utf8' }).stdout}`);
    const caps = readFileSync(`/proc/${d.child.pid}/status`, 'utf8');
    const eff = /CapEff:\s*([0-9a-f]+)/.exec(caps)?.[1] ?? '';
    // setpriv execs the program, so the child's pid is ipvssync's own; CAP_NET_ADMIN is bit 12.
    if (BigInt(`0x${eff}`) !== 1n << 12n) fail(`ipvssync's effective capabilities: ${eff}`);
  });

  await check('ssyncd', async () => {
    // What systemd does for RuntimeDirectory= and StateDirectory=.
    mkdirSync('/run/ssyncd', { recursive: true, mode: 0o750 });
    mkdirSync('/var/lib/ssyncd', { recursive: true, mode: 0o750 });
    const env: Record<string, string> = {};
    for (const l of readFileSync('/etc/default/ssyncd', 'utf8').split('\n')) {
      const m = /^(\w+)="?([^"]*)"?$/.exec(l.trim());
      if (m) env[m[1]!] = m[2]!;
    }
    const d = startUnit('ssyncd.service', env);
    const mode = await until('ssyncdctl show mode', 60_000, () => {
      const r = spawnSync('ssyncdctl', ['show', 'mode'], { encoding: 'utf8' });
      return r.status === 0 ? r.stdout.trim() : undefined;
    }, d.output);
    if (mode !== 'master') fail(`show mode: ${mode}`);
  });

  for (const c of children) c.kill('SIGTERM');
  await sleep(3000);
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');

  await check('remove', () => {
    sh('dpkg', ['-r', 'surealived-ts']);
    for (const p of PROGRAMS) if (existsSync(`/usr/sbin/${p}`)) fail(`/usr/sbin/${p} left`);
    if (existsSync('/usr/lib/surealived-ts')) fail('/usr/lib/surealived-ts left');
    for (const f of CONFFILES) if (!existsSync(f)) fail(`conffile ${f} removed by dpkg -r`);
  });

  await check('purge', () => {
    sh('dpkg', ['-P', 'surealived-ts']);
    const left = ['/etc/surealived', '/etc/ssyncd', '/etc/default/ssyncd', '/etc/logrotate.d/surealived-ts', '/var/lib/surealived', '/var/log/surealived', '/var/lib/ssyncd', '/run/ssyncd', '/usr/lib/surealived', '/usr/share/doc/surealived-ts', '/lib/systemd/system/surealived.service'].filter((p) => existsSync(p));
    if (left.length) fail(`left after purge: ${left.join(' ')}`);
    const q = spawnSync('dpkg-query', ['-W', 'surealived-ts'], { encoding: 'utf8' });
    if (q.status === 0 && q.stdout.trim() !== '') fail(`dpkg still knows it: ${q.stdout}`);
    if (existsSync('/var/lib/dpkg/info/surealived-ts.list')) fail('dpkg file list left');
  });
}

main()
  .catch((e: unknown) => console.log(`guest script failed: ${(e as Error).stack ?? String(e)}`))
  .finally(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    save();
    process.exit(checks.every((c) => c.ok) && checks.length === CHECK_COUNT ? 0 : 1);
  });
