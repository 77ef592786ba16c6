// Peer credentials: the native SO_PEERCRED module, and the control server refusing a client of
// another uid (a real process run as nobody, 65534) while root is served.

import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, closeSync, openSync } from 'node:fs';
import { createServer, connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { peerCred, peerCredAvailable, peerCredOf, PeerCredError } from '../../common/peercred.js';
import { encodeCommandFrame, encodeStatusTrailer } from '../../session-sync/control/frame.js';
import { FakeDaemon, startServer, tempDir, type Running } from './control-fixtures.js';

const CLI = fileURLToPath(new URL('../../ssyncdctl/cli.js', import.meta.url));
const NOBODY = 65534;

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run `argv` as uid/gid `uid` through setpriv (we are root in the test environment). */
function runAs(uid: number, argv: readonly string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile('setpriv', [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...argv], { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code as number) : 0;
      resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}

describe('peer credentials', function () {
  this.timeout(20000);

  before(() => {
    assert.ok(peerCredAvailable(), 'build/Release/peercred.node must be built (npm install)');
    assert.equal(process.getuid!(), 0, 'these tests switch to uid 65534 and must run as root');
  });

  describe('native module', () => {
    it('reads pid, uid and gid of both ends of a unix connection', async () => {
      const t = tempDir();
      const path = join(t.dir, 'pc.sock');
      const accepted: Socket[] = [];
      const srv = createServer((s) => accepted.push(s));
      srv.listen(path);
      await once(srv, 'listening');
      const client = connect({ path });
      await once(client, 'connect');
      try {
        while (accepted.length === 0) await new Promise((r) => setImmediate(r));
        const me = { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() };
        assert.deepEqual(peerCredOf(accepted[0]!), me);
        assert.deepEqual(peerCredOf(client), me);
        const fd = (accepted[0] as unknown as { _handle: { fd: number } })._handle.fd;
        assert.deepEqual(peerCred(fd), me);
      } finally {
        client.destroy();
        for (const s of accepted) s.destroy();
        srv.close();
        t.remove();
      }
    });

    it('says why it cannot: a closed fd (EBADF), a file (ENOTSOCK), a bad argument, a closed socket', () => {
      assert.throws(
        () => peerCred(987654),
        (e: unknown) => e instanceof PeerCredError && e.code === 'EBADF' && e.message === 'getsockopt(SO_PEERCRED) on fd 987654: Bad file descriptor',
      );
      const fd = openSync(fileURLToPath(import.meta.url), 'r');
      try {
        assert.throws(() => peerCred(fd), (e: unknown) => e instanceof PeerCredError && e.code === 'ENOTSOCK');
      } finally {
        closeSync(fd);
      }
      assert.throws(() => peerCred(-1), (e: unknown) => e instanceof PeerCredError && e.code === 'ERR_OUT_OF_RANGE');
      assert.throws(() => peerCred(1.5), (e: unknown) => e instanceof PeerCredError && e.code === 'ERR_OUT_OF_RANGE');
      assert.throws(() => peerCred('3' as unknown as number), (e: unknown) => e instanceof PeerCredError && e.code === 'ERR_INVALID_ARG_TYPE');
      const s = connect({ path: '/nonexistent/x.sock' });
      s.on('error', () => undefined);
      s.destroy();
      assert.throws(() => peerCredOf(s), (e: unknown) => e instanceof PeerCredError && e.code === 'NO_FD');
    });
  });

  describe('control server', () => {
    let daemon: FakeDaemon;
    let run: Running;

    beforeEach(async () => {
      daemon = new FakeDaemon();
      run = await startServer(daemon.handler);
      // nobody must be able to reach the socket for the check to be what stops it.
      chmodSync(run.dir, 0o755);
      chmodSync(join(run.dir, 'run'), 0o755);
    });

    afterEach(async () => {
      await run.stop();
    });

    it('refuses a client running as another uid, even if the socket mode lets it connect, and logs it', async () => {
      chmodSync(run.path, 0o666); // a loosened mode, as v1.0.0's umask(0) left it
      const r = await runAs(NOBODY, [process.execPath, CLI, '-s', run.path, 'show', 'mode']);
      assert.deepEqual(r, { code: 1, stdout: `Permission denied: uid ${NOBODY} may not control ssyncd\n`, stderr: '' });
      assert.deepEqual(daemon.calls, []);
      assert.ok(run.logs.some(([l, m]) => l === 'warn' && new RegExp(`refused pid \\d+ uid ${NOBODY} gid ${NOBODY}: uid not allowed \\(allowed: 0\\)`).test(m)), JSON.stringify(run.logs));
    });

    it('refuses an original-format frame from another uid with the text only (no trailer)', async () => {
      chmodSync(run.path, 0o666);
      const frame = encodeCommandFrame({ cmd: 'quit' }).toString('hex');
      const script = `const s=require('net').connect(${JSON.stringify(run.path)});const got=[];s.on('connect',()=>s.write(Buffer.from('${frame}','hex')));s.on('data',c=>got.push(c));s.on('close',()=>process.stdout.write(Buffer.concat(got).toString('hex')))`;
      const r = await runAs(NOBODY, [process.execPath, '-e', script]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(Buffer.from(r.stdout, 'hex').toString(), `Permission denied: uid ${NOBODY} may not control ssyncd`);
      assert.deepEqual(daemon.calls, []);
    });

    it('keeps another uid out at the file mode already (0600): ssyncdctl says so, exit 1, not 254', async () => {
      const r = await runAs(NOBODY, [process.execPath, CLI, '-s', run.path, 'quit']);
      assert.equal(r.code, 1);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^ssyncdctl: control socket .*: cannot connect: connect EACCES/);
      assert.deepEqual(daemon.calls, []);
    });

    it('serves root', async () => {
      const r = await runAs(0, [process.execPath, CLI, '-s', run.path, 'show', 'mode']);
      assert.deepEqual(r, { code: 0, stdout: 'master\n', stderr: '' });
      assert.deepEqual(daemon.calls, [{ cmd: { cmd: 'show-mode' }, opts: { json: false, wantStatus: true } }]);
    });

    it('serves only the uids it is given (root refused when not listed)', async () => {
      const strict = await startServer(daemon.handler, { allowedUids: [4242] });
      try {
        const s = connect({ path: strict.path });
        const got: Buffer[] = [];
        s.on('data', (c: Buffer) => got.push(c));
        s.write(encodeCommandFrame({ cmd: 'show-mode' }, { json: false, wantStatus: true }));
        await once(s, 'close');
        assert.deepEqual(Buffer.concat(got), Buffer.concat([Buffer.from('Permission denied: uid 0 may not control ssyncd'), encodeStatusTrailer(1)]));
        assert.ok(strict.logs.some(([l, m]) => l === 'warn' && m.includes('uid not allowed (allowed: 4242)')));
      } finally {
        await strict.stop();
      }
    });
  });
});
