// ssyncdctl against a real control server: what it prints and the exit status for every kind of
// answer, in-process through main() and as a real `node dist/ssyncdctl/cli.js` process.

import { strict as assert } from 'node:assert';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main, type CliIo } from '../../ssyncdctl/cli.js';
import { USAGE_TEXT } from '../../session-sync/control/grammar.js';
import { FakeDaemon, startServer, tempDir, type Running } from '../session-sync/control-fixtures.js';

const CLI = fileURLToPath(new URL('../../ssyncdctl/cli.js', import.meta.url));

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function inProcess(argv: readonly string[]): Promise<Ran> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) };
  const code = await main(argv, io);
  return { code, stdout, stderr };
}

/** The built CLI as its own process (async: the server under test lives in this process). */
function asProcess(argv: readonly string[]): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...argv], { encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}

describe('ssyncdctl', function () {
  this.timeout(20000);
  let daemon: FakeDaemon;
  let run: Running;
  const ctl = (...words: string[]): Promise<Ran> => inProcess(['-s', run.path, ...words]);

  beforeEach(async () => {
    daemon = new FakeDaemon();
    run = await startServer(daemon.handler);
  });

  afterEach(async () => {
    await run.stop();
  });

  describe('in-process', () => {
    it('prints the reply and a newline, and exits 0 when done', async () => {
      assert.deepEqual(await ctl('show', 'mode'), { code: 0, stdout: 'master\n', stderr: '' });
      assert.deepEqual(await ctl('start', 'http', 'farm1'), { code: 0, stdout: 'starting http sync service\nhttp farm added\n', stderr: '' });
      assert.deepEqual(await ctl('write', 'recent'), { code: 0, stdout: 'writing datarecent data written correclty\n', stderr: '' });
      assert.deepEqual(await ctl('count', 'recent'), { code: 0, stdout: '# t1: 1\n\n', stderr: '' });
    });

    it('prints nothing for an empty reply', async () => {
      assert.deepEqual(await ctl('start', 'recent'), { code: 0, stdout: '', stderr: '' });
      assert.deepEqual(await ctl('quit'), { code: 0, stdout: '', stderr: '' });
    });

    it('exits 1 when the daemon refused or failed, still printing its text', async () => {
      daemon.writeFails = true;
      assert.deepEqual(await ctl('write', 'recent'), { code: 1, stdout: 'writing dataerror writing recent data\n', stderr: '' });
      assert.deepEqual(await ctl('stop', 'recent'), { code: 1, stdout: 'recent sync service not running\n\n', stderr: '' });
      assert.deepEqual(await ctl('write', 'recent', 'table', 'nope'), { code: 1, stdout: "table doesn't exist\n", stderr: '' });
      assert.deepEqual(await ctl('start', 'http', 'nopound'), { code: 1, stdout: 'starting http sync service\nerror adding http farm listener\n', stderr: '' });
      assert.deepEqual(await ctl('start', 'nft', 'missing', 's'), { code: 1, stdout: 'error adding nft set inet missing s: no such table\n', stderr: '' });
    });

    it('acts on the named table for write/clear recent table (v1.0.0 wrote every table)', async () => {
      assert.deepEqual(await ctl('write', 'recent', 'table', 't1'), { code: 0, stdout: 'table written correclty\n', stderr: '' });
      assert.deepEqual(await ctl('clear', 'recent', 'table', 't1'), { code: 0, stdout: 'table cleared correclty\n', stderr: '' });
      assert.deepEqual(
        daemon.calls.map((c) => c.cmd),
        [
          { cmd: 'write-recent-table', table: 't1' },
          { cmd: 'clear-recent-table', table: 't1' },
        ],
      );
    });

    it('sends switch commands', async () => {
      assert.deepEqual(await ctl('switch', 'backup', 'address', '10.0.0.1', 'port', '9999'), { code: 0, stdout: 'switched to backup of 10.0.0.1:9999\n', stderr: '' });
      assert.deepEqual(await ctl('show', 'mode'), { code: 0, stdout: 'backup\n', stderr: '' });
      assert.deepEqual(await ctl('switch', 'master', 'port', '9999'), { code: 0, stdout: 'switched to master, listening on port 9999\n', stderr: '' });
    });

    it('asks for JSON with --json on show, count and status', async () => {
      const status = await ctl('--json', 'status');
      assert.equal(status.code, 0);
      assert.equal(JSON.parse(status.stdout).mode, 'master');
      assert.deepEqual(JSON.parse((await ctl('show', 'recent', '--json')).stdout), {
        tables: [{ name: 't1', entries: [{ addr: '10.0.0.5', family: 4, ttl: 64, lastSeenMs: 2000, hitsMs: [1000, 2000], lastSeenJiffies: 4294892796, hitsJiffies: [4294892546, 4294892796] }] }],
      });
      assert.deepEqual(JSON.parse((await ctl('--json', 'show', 'mode')).stdout), { mode: 'master' });
      assert.deepEqual(daemon.calls.map((c) => c.opts.json), [true, true, true]);
    });

    it('exits 2 on usage errors without connecting, printing the message on stderr', async () => {
      assert.deepEqual(await ctl('start', 'http'), { code: 2, stdout: '', stderr: "ssyncdctl: no farm specified\nTry 'ssyncdctl help'.\n" });
      assert.deepEqual(await ctl('show', 'mode', 'now'), { code: 2, stdout: '', stderr: "ssyncdctl: Command not valid: unexpected now\nTry 'ssyncdctl help'.\n" });
      assert.deepEqual(await ctl('switch', 'master', 'port', 'x'), { code: 2, stdout: '', stderr: "ssyncdctl:  port number not valid\nTry 'ssyncdctl help'.\n" });
      assert.deepEqual(await ctl('--json', 'quit'), { code: 2, stdout: '', stderr: "ssyncdctl: --json applies only to show, count and status\nTry 'ssyncdctl help'.\n" });
      assert.deepEqual(await inProcess([]), { code: 2, stdout: '', stderr: "ssyncdctl: Command not valid:\nTry 'ssyncdctl help'.\n" });
      assert.deepEqual(daemon.calls, []);
    });

    it('prints the usage text for help, exit 0', async () => {
      assert.deepEqual(await inProcess(['help']), { code: 0, stdout: USAGE_TEXT + '\n', stderr: '' });
    });

    it('exits 254 with `ssyncd daemon not running` when no socket exists or nobody listens', async () => {
      const t = tempDir();
      try {
        assert.deepEqual(await inProcess(['-s', join(t.dir, 'none.sock'), 'show', 'mode']), { code: 254, stdout: 'ssyncd daemon not running\n', stderr: '' });
        await run.server.close();
        // The file is gone after a clean close; a killed daemon leaves it, which refuses connections.
        const stale = join(t.dir, 'stale.sock');
        const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(stale)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
        await once(child.stdout!, 'data');
        child.kill('SIGKILL');
        await once(child, 'exit');
        assert.deepEqual(await inProcess(['-s', stale, 'quit']), { code: 254, stdout: 'ssyncd daemon not running\n', stderr: '' });
      } finally {
        t.remove();
      }
    });

    it('exits 1 when the reply carries no status (a v1.0.0 daemon on the path)', async () => {
      const t = tempDir();
      const path = join(t.dir, 'old.sock');
      // What v1.0.0 does: read the frame, send plain text, close.
      const old = createServer((s) => s.once('data', () => s.end('master')));
      old.listen(path);
      await once(old, 'listening');
      try {
        assert.deepEqual(await inProcess(['-s', path, 'show', 'mode']), { code: 1, stdout: 'master\n', stderr: 'ssyncdctl: the reply carried no status: command outcome unknown\n' });
      } finally {
        old.close();
        t.remove();
      }
    });
  });

  describe('as a process (node dist/ssyncdctl/cli.js)', () => {
    it('prints `master` and exits 0', async () => {
      assert.deepEqual(await asProcess(['-s', run.path, 'show', 'mode']), { code: 0, stdout: 'master\n', stderr: '' });
    });

    it('exits 1 with the daemon text when it failed', async () => {
      daemon.writeFails = true;
      assert.deepEqual(await asProcess(['--socket', run.path, 'write', 'recent']), { code: 1, stdout: 'writing dataerror writing recent data\n', stderr: '' });
    });

    it('prints JSON status', async () => {
      const r = await asProcess([`--socket=${run.path}`, 'status', '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(Object.keys(JSON.parse(r.stdout)), ['mode', 'pid', 'startedAt', 'uptimeMs', 'endpoint', 'sources', 'store', 'queueDepth', 'lastSnapshot', 'peers']);
    });

    it('exits 2 on a usage error, 0 on help, 254 without a daemon', async () => {
      const usage = await asProcess(['-s', run.path, 'start', 'mail']);
      assert.deepEqual(usage, { code: 2, stdout: '', stderr: "ssyncdctl: target to start not valid: mail\nTry 'ssyncdctl help'.\n" });
      const help = await asProcess(['help']);
      assert.equal(help.code, 0);
      assert.equal(help.stdout, USAGE_TEXT + '\n');
      assert.deepEqual(await asProcess(['-s', join(run.dir, 'nothing-here.sock'), 'show', 'mode']), { code: 254, stdout: 'ssyncd daemon not running\n', stderr: '' });
    });

    it('prints a large reply whole into a pipe', async () => {
      for (let i = 0; i < 20000; i++) daemon.recent.set(`t${String(i).padStart(5, '0')}`, []);
      const r = await asProcess(['-s', run.path, 'count', 'recent']);
      assert.equal(r.code, 0);
      assert.equal(r.stdout.split('\n').length, 20001 + 2); // 20001 lines, the reply's last newline, ours
    });
  });
});
