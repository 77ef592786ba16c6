// Network namespaces for host-side tests: created with unique names, joined by veth pairs, removed
// after the test. Commands run inside with `ip netns exec`. Also installs the host tools once.

import { execFile, execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
/** Repository root, from test/helpers or dist/test/helpers. */
export const REPO = HERE.split('/').includes('dist') ? resolve(HERE, '..', '..', '..') : resolve(HERE, '..', '..');
export const SBIN_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let toolsReady = false;

/** Why namespace tests cannot run here (they need root on Linux), or undefined. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (network namespaces and apt-get need root)';
  return undefined;
}

/** Installs iptables/nftables/iproute2 through test/setup/host-tools.sh (once per process). */
export function ensureHostTools(): void {
  if (toolsReady) return;
  execFileSync('sh', [join(REPO, 'test', 'setup', 'host-tools.sh')], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:${SBIN_PATH}` },
    timeout: 10 * 60_000,
  });
  toolsReady = true;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

function runFile(cmd: string, args: readonly string[], input?: string): Promise<RunResult> {
  return new Promise((res) => {
    const child = execFile(
      cmd,
      args,
      { maxBuffer: 256 << 20, env: { ...process.env, PATH: SBIN_PATH } },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
        res({ stdout, stderr, code });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

export class Netns {
  private constructor(readonly name: string) {}

  /** A new namespace with `lo` up. */
  static async create(prefix = 'ss'): Promise<Netns> {
    ensureHostTools();
    const name = `${prefix}-${randomBytes(4).toString('hex')}`;
    const r = await runFile('ip', ['netns', 'add', name]);
    if (r.code !== 0) throw new Error(`ip netns add ${name}: ${r.stderr}`);
    const ns = new Netns(name);
    await ns.must('ip', ['link', 'set', 'lo', 'up']);
    return ns;
  }

  /** Runs a command inside; never throws, the caller inspects the result. */
  exec(cmd: string, args: readonly string[] = [], input?: string): Promise<RunResult> {
    return runFile('ip', ['netns', 'exec', this.name, cmd, ...args], input);
  }

  /** Runs a command inside and throws with its stderr when it fails. */
  async must(cmd: string, args: readonly string[] = [], input?: string): Promise<string> {
    const r = await this.exec(cmd, args, input);
    if (r.code !== 0) throw new Error(`[${this.name}] ${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Runs a shell script inside. */
  sh(script: string): Promise<string> {
    return this.must('sh', ['-c', script]);
  }

  /** Starts a long-running process inside (the caller kills it). */
  spawn(cmd: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.name, cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      ...opts,
      env: { ...process.env, PATH: SBIN_PATH, ...(opts.env ?? {}) },
    });
  }

  async destroy(): Promise<void> {
    // Processes still inside keep the namespace's devices alive; kill them first.
    const pids = await runFile('ip', ['netns', 'pids', this.name]);
    for (const p of pids.stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(p), 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
    await runFile('ip', ['netns', 'del', this.name]);
  }
}

/** Joins two namespaces with a veth pair and gives each end an address (IPv4 /24 and IPv6 /64). */
export async function link(
  a: Netns,
  aAddr: { v4: string; v6: string },
  b: Netns,
  bAddr: { v4: string; v6: string },
): Promise<{ aIf: string; bIf: string }> {
  const id = randomBytes(3).toString('hex');
  const aIf = `va${id}`;
  const bIf = `vb${id}`;
  const r = await runFile('ip', ['link', 'add', aIf, 'netns', a.name, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name]);
  if (r.code !== 0) throw new Error(`veth ${aIf}/${bIf}: ${r.stderr}`);
  for (const [ns, ifn, addr] of [[a, aIf, aAddr], [b, bIf, bAddr]] as const) {
    await ns.must('ip', ['addr', 'add', `${addr.v4}/24`, 'dev', ifn]);
    await ns.must('ip', ['-6', 'addr', 'add', `${addr.v6}/64`, 'dev', ifn, 'nodad']);
    await ns.must('ip', ['link', 'set', ifn, 'up']);
  }
  return { aIf, bIf };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A process parked inside a namespace: its /proc/<pid>/net shows that namespace's tables. */
export interface Holder {
  readonly child: ChildProcess;
  readonly procDir: string;
}

export async function holderOf(ns: Netns): Promise<Holder> {
  const child = ns.spawn('sleep', ['3600'], { stdio: 'ignore' });
  const pid = child.pid;
  if (!pid) throw new Error(`holder did not start in ${ns.name}`);
  // `ip netns exec` joins the namespace and then execs sleep under the same pid: wait for the join.
  const want = statSync(`/run/netns/${ns.name}`).ino;
  for (let i = 0; i < 200; i++) {
    try {
      if (statSync(`/proc/${pid}/ns/net`).ino === want) return { child, procDir: `/proc/${pid}/net/xt_recent` };
    } catch {
      /* not there yet */
    }
    await sleep(10);
  }
  throw new Error(`holder ${pid} never joined ${ns.name}`);
}

/** Sends UDP datagrams inside the namespace (node: dash has no /dev/udp). */
const SENDER = `
const o = JSON.parse(process.argv[1]);
const s = require('node:dgram').createSocket(o.family === 6 ? 'udp6' : 'udp4');
s.bind({ address: o.src, port: 0 }, async () => {
  if (o.ttl) s.setTTL(o.ttl);
  for (let i = 0; i < o.count; i++) {
    await new Promise((res, rej) => s.send('x', o.port, o.dst, (e) => (e ? rej(e) : res())));
    if (o.gapMs) await new Promise((r) => setTimeout(r, o.gapMs));
  }
  s.close();
});`;

export async function sendUdp(
  ns: Netns,
  o: { family: 4 | 6; src: string; dst: string; port?: number; count?: number; ttl?: number; gapMs?: number },
): Promise<void> {
  await ns.must('node', ['-e', SENDER, JSON.stringify({ port: 9, count: 1, ...o })]);
}
