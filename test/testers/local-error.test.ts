// Probe errors that are the director's shortage (EMFILE, ENOBUFS, a failed fork) are flagged as
// local, on the native prober, the net.Socket/undici path and the exec tester alike.

import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localErrno, localResult } from '../../testers/local-error.js';
import { nativeBuilt } from '../../testers/native.js';

const testers = fileURLToPath(new URL('../../testers/', import.meta.url));

describe('local error classification', () => {
  it('descriptor, memory, buffer and local-port shortages of a socket are local; answers of the real are not', () => {
    for (const code of ['EMFILE', 'ENFILE', 'ENOBUFS', 'ENOMEM', 'EADDRNOTAVAIL']) assert.equal(localErrno(code, 'socket'), code);
    for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'EAGAIN', undefined]) assert.equal(localErrno(code, 'socket'), undefined);
  });

  it('a fork or spawn that fails for want of processes, memory or descriptors is local; a missing program is not', () => {
    for (const code of ['EAGAIN', 'ENOMEM', 'EMFILE', 'ENFILE']) assert.equal(localErrno(code, 'spawn'), code);
    for (const code of ['ENOENT', 'EACCES', 'ENOEXEC']) assert.equal(localErrno(code, 'spawn'), undefined);
  });

  it('a local result is a failure flagged local, saying it is not a verdict', () => {
    assert.deepEqual(localResult('EMFILE', 'cannot open a probe socket'), {
      ok: false,
      detail: 'cannot open a probe socket: EMFILE on the director, not a verdict on the real',
      local: 'EMFILE',
    });
  });
});

// Runs in a child under `prlimit --nofile=64`: 100 http probes at once against a server that never
// answers, then one exec probe with every descriptor taken.
const CHILD = `
const { httpTester } = await import(${JSON.stringify(join(testers, 'http.js'))});
const { execTester } = await import(${JSON.stringify(join(testers, 'exec.js'))});
const { openSync } = await import('node:fs');
const port = Number(process.argv[1]);
const params = httpTester.compile({ url: '/', host: 't' }, { ssl: false, timeoutMs: 800 });
const ctx = { signal: AbortSignal.timeout(800), timeoutMs: 800 };
const target = (i) => ({ addr: '127.0.0.1', family: 4, port, vname: 'v', rname: 'r' + i });
const http = await Promise.all(Array.from({ length: 100 }, (_, i) => httpTester.probe(target(i), params, ctx)));
const held = [];
try { for (;;) held.push(openSync('/dev/null', 'r')); } catch {}
const exec = await execTester.probe(target(0), execTester.compile({ exec: '/bin/true' }, { ssl: false, timeoutMs: 800 }), { signal: AbortSignal.timeout(800), timeoutMs: 800 });
process.stdout.write(JSON.stringify({ native: params.native !== undefined, http, exec }));
`;

interface ChildOut {
  native: boolean;
  http: { ok: boolean; detail: string; local?: string }[];
  exec: { ok: boolean; detail: string; local?: string };
}

function runChild(port: number, probes: 'native' | 'js'): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    execFile(
      'prlimit',
      ['--nofile=64:64', process.execPath, '--input-type=module', '-e', CHILD, String(port)],
      { env: { ...process.env, SUREALIVED_PROBES: probes }, timeout: 20_000 },
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as ChildOut)),
    );
  });
}

describe('testers under a descriptor limit of 64 (a child process under prlimit)', function () {
  this.timeout(30_000);
  let server: Server;
  let port = 0;
  const held: Socket[] = [];
  before(async function () {
    if (process.platform !== 'linux') this.skip();
    // Accepts and never answers: every probe holds its socket until the deadline.
    server = createServer((c) => {
      c.on('error', () => undefined);
      held.push(c);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    port = (server.address() as { port: number }).port;
  });
  after(() => {
    for (const c of held) c.destroy();
    server.close();
  });

  for (const probes of ['native', 'js'] as const) {
    it(`${probes} path: probes that cannot get a socket are flagged EMFILE, the others fail at the deadline; exec spawn under EMFILE is local`, async function () {
      if (probes === 'native' && !nativeBuilt()) this.skip();
      const out = await runChild(port, probes);
      assert.equal(out.native, probes === 'native');
      const local = out.http.filter((r) => r.local !== undefined);
      const judged = out.http.filter((r) => r.local === undefined);
      assert.ok(local.length >= 30, `${local.length} probes flagged local`);
      assert.ok(judged.length >= 20, `${judged.length} probes ran`);
      for (const r of local) assert.equal(r.local, 'EMFILE', r.detail);
      for (const r of judged) {
        assert.equal(r.ok, false);
        assert.doesNotMatch(r.detail, /EMFILE|ENFILE/, `a judged probe never carries a local errno: ${r.detail}`);
      }
      assert.equal(out.exec.local, 'EMFILE', out.exec.detail);
      assert.match(out.exec.detail, /cannot run \/bin\/true: EMFILE on the director, not a verdict on the real/);
    });
  }
});
