// The control socket server on real unix sockets: original frames get original replies, extended
// frames get a status trailer, frames are reassembled, bad frames get `Command error` and a close,
// clients that leave early do no harm, commands run one at a time, and a live socket is never stolen.

import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { lstat, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { exchange, sendCommand } from '../../session-sync/control/client.js';
import type { Command } from '../../session-sync/control/commands.js';
import { encodeCommandFrame, encodeStatusTrailer } from '../../session-sync/control/frame.js';
import type { Reply } from '../../session-sync/control/replies.js';
import { ControlServer, ControlServerError } from '../../session-sync/control/server.js';
import { FakeDaemon, rawExchange, sleep, startServer, tempDir, until, type Running } from './control-fixtures.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const withStatus = (text: string, status: 0 | 1): Buffer => Buffer.concat([Buffer.from(text), encodeStatusTrailer(status)]);

describe('control socket server', function () {
  this.timeout(20000);
  let daemon: FakeDaemon;
  let run: Running;

  beforeEach(async () => {
    daemon = new FakeDaemon();
    run = await startServer(daemon.handler);
  });

  afterEach(async () => {
    await run.stop();
  });

  describe('compatibility with v1.0.0 ssyncdctl', () => {
    it('answers the spec frame `start http farm1` with the original text, no trailer, and closes', async () => {
      const reply = await rawExchange(run.path, [hex('EF AB 07 0C 00 02 05 66 61 72 6D 31')]);
      assert.equal(reply.toString(), 'starting http sync service\nhttp farm added');
      assert.deepEqual(daemon.calls, [{ cmd: { cmd: 'start-http', farm: 'farm1' }, opts: { json: false, wantStatus: false } }]);
    });

    it('answers `show mode` with exactly master, and `write recent` with the concatenated typo text', async () => {
      assert.equal((await rawExchange(run.path, [encodeCommandFrame({ cmd: 'show-mode' })])).toString(), 'master');
      assert.equal((await rawExchange(run.path, [encodeCommandFrame({ cmd: 'write-recent' })])).toString(), 'writing datarecent data written correclty');
      daemon.writeFails = true;
      // No status in the original protocol, even for a failure.
      assert.equal((await rawExchange(run.path, [encodeCommandFrame({ cmd: 'write-recent' })])).toString(), 'writing dataerror writing recent data');
    });

    it('answers VOID and unknown ids with `Command no found\\n`, without calling the handler', async () => {
      for (const id of [1, 20, 21, 22, 99]) {
        assert.equal((await rawExchange(run.path, [Buffer.from([0xef, 0xab, 7, 6, 0, id])])).toString(), 'Command no found\n');
      }
      assert.deepEqual(await rawExchange(run.path, [Buffer.from([0xef, 0xab, 7, 8, 0, 99, 0xe5, 0x02])]), withStatus('Command no found\n', 1));
      assert.deepEqual(daemon.calls, []);
      assert.ok(run.logs.some(([l, m]) => l === 'warn' && m.includes('unknown command id 99')));
    });

    it('answers silent commands with nothing at all', async () => {
      assert.equal((await rawExchange(run.path, [encodeCommandFrame({ cmd: 'start-recent' })])).length, 0);
      assert.equal((await rawExchange(run.path, [encodeCommandFrame({ cmd: 'clear-http' })])).length, 0);
    });
  });

  describe('extended frames', () => {
    it('append the status trailer only when asked, with the handler status', async () => {
      const ask = { json: false, wantStatus: true };
      assert.deepEqual(await rawExchange(run.path, [encodeCommandFrame({ cmd: 'show-mode' }, ask)]), withStatus('master', 0));
      assert.deepEqual(await rawExchange(run.path, [encodeCommandFrame({ cmd: 'stop-recent' }, ask)]), withStatus('recent sync service not running\n', 1));
      assert.deepEqual(await rawExchange(run.path, [encodeCommandFrame({ cmd: 'start-recent' }, ask)]), withStatus('', 0));
      assert.deepEqual(await rawExchange(run.path, [encodeCommandFrame({ cmd: 'show-mode' }, { json: false, wantStatus: false })]), Buffer.from('master'));
    });

    it('pass --json to the handler, and sendCommand splits text and status', async () => {
      assert.deepEqual(await sendCommand(run.path, { cmd: 'show-mode' }, { json: true, wantStatus: true }), { text: '{"mode":"master"}', status: 0 });
      assert.deepEqual(await sendCommand(run.path, { cmd: 'count-recent' }, { json: true, wantStatus: true }), { text: '{"tables":[{"name":"t1","count":1}],"total":1}', status: 0 });
      assert.deepEqual(await sendCommand(run.path, { cmd: 'write-recent-table', table: 'nope' }, { json: false, wantStatus: true }), { text: "table doesn't exist", status: 1 });
      // Without want-status the client reports 0 whatever the daemon said, as v1.0.0's did.
      assert.deepEqual(await sendCommand(run.path, { cmd: 'write-recent-table', table: 'nope' }, { json: false, wantStatus: false }), { text: "table doesn't exist", status: 0 });
      assert.deepEqual(
        daemon.calls.map((c) => c.opts),
        [
          { json: true, wantStatus: true },
          { json: true, wantStatus: true },
          { json: false, wantStatus: true },
          { json: false, wantStatus: false },
        ],
      );
    });

    it('carry every command to the handler intact', async () => {
      const all: Command[] = [
        { cmd: 'start-recent' },
        { cmd: 'stop-recent' },
        { cmd: 'start-http', farm: 'web' },
        { cmd: 'stop-http', farm: 'web' },
        { cmd: 'show-http' },
        { cmd: 'count-http' },
        { cmd: 'clear-http' },
        { cmd: 'write-http' },
        { cmd: 'show-recent' },
        { cmd: 'count-recent' },
        { cmd: 'clear-recent' },
        { cmd: 'clear-recent-table', table: 't1' },
        { cmd: 'write-recent' },
        { cmd: 'write-recent-table', table: 't1' },
        { cmd: 'switch-master', port: 9999 },
        { cmd: 'switch-backup', address: 'fe80::1', port: 9999 },
        { cmd: 'show-mode' },
        { cmd: 'quit' },
        { cmd: 'start-nft', ref: { kind: 'nft', family: 'inet', table: 'f', set: 's' } },
        { cmd: 'stop-nft', ref: { kind: 'nft', family: 'inet', table: 'f', set: 's' } },
        { cmd: 'show-nft' },
        { cmd: 'count-nft' },
        { cmd: 'write-nft' },
        { cmd: 'clear-nft' },
        { cmd: 'status' },
      ];
      for (const c of all) {
        const r = await sendCommand(run.path, c, { json: false, wantStatus: true });
        assert.ok(!('notRunning' in r));
      }
      assert.deepEqual(
        daemon.calls.map((c) => c.cmd),
        all,
      );
    });
  });

  describe('reassembly and bad frames', () => {
    it('reassembles a frame written one byte at a time', async () => {
      const bytes = encodeCommandFrame({ cmd: 'start-http', farm: 'farm1' }, { json: false, wantStatus: true });
      const chunks = [...bytes].map((b) => Buffer.from([b]));
      const reply = await rawExchange(run.path, chunks, { gapMs: 3 });
      assert.deepEqual(reply, withStatus('starting http sync service\nhttp farm added', 0));
    });

    it('answers a frame over the bound with `Command error` as soon as its header is in, closes, and stays up', async () => {
      // The length says 5000; the rest never comes, yet the answer does.
      const reply = await rawExchange(run.path, [hex('EF AB 07 88 13 02')]);
      assert.equal(reply.toString(), 'Command error');
      assert.ok(run.logs.some(([l, m]) => l === 'warn' && m.includes('length field 5000 is over the 1024-byte bound')));
      assert.equal((await rawExchange(run.path, [encodeCommandFrame({ cmd: 'show-mode' })])).toString(), 'master');
    });

    it('honours a smaller maxFrame', async () => {
      const small = await startServer(daemon.handler, { maxFrame: 16 });
      try {
        assert.equal((await rawExchange(small.path, [encodeCommandFrame({ cmd: 'start-http', farm: 'a-rather-long-farm' })])).toString(), 'Command error');
        assert.equal((await rawExchange(small.path, [encodeCommandFrame({ cmd: 'show-mode' })])).toString(), 'master');
      } finally {
        await small.stop();
      }
    });

    it('answers garbage with `Command error` and closes (v1.0.0 left the client hanging)', async () => {
      for (const junk of [Buffer.from('GET / HTTP/1.0\r\n\r\n'), hex('EF AB 04 06 00 08'), hex('EF AB 07 05 00'), hex('EF AB 07 0D 00 02 05 66 61 72 6D 31 00'), hex('EF AB 07 07 00 11 77')]) {
        assert.equal((await rawExchange(run.path, [junk])).toString(), 'Command error', junk.toString('hex'));
      }
      assert.deepEqual(daemon.calls, []);
      assert.equal((await rawExchange(run.path, [encodeCommandFrame({ cmd: 'show-mode' })])).toString(), 'master');
    });

    it('answers a frame cut short by the client closing its side with `Command error`', async () => {
      const reply = await rawExchange(run.path, [hex('EF AB 07 0C 00 02 05 66')], { halfClose: true });
      assert.equal(reply.toString(), 'Command error');
      assert.ok(run.logs.some(([, m]) => m.includes('frame incomplete: 8 of 12 bytes (the client closed its side)')));
    });

    it('answers a frame that stops coming with `Command error` after the I/O timeout', async () => {
      const quick = await startServer(daemon.handler, { ioTimeoutMs: 150 });
      try {
        assert.equal((await rawExchange(quick.path, [hex('EF AB 07 0C 00')])).toString(), 'Command error');
        assert.ok(quick.logs.some(([, m]) => m.includes('nothing more came for 150 ms')));
      } finally {
        await quick.stop();
      }
    });

    it('takes a client that connects and leaves without a word quietly', async () => {
      assert.equal((await rawExchange(run.path, [], { halfClose: true })).length, 0);
      await until(() => run.logs.some(([l, m]) => l === 'info' && m.includes('sent no command')), 'the log line');
      assert.ok(!run.logs.some(([l]) => l !== 'info'));
    });

    it('does not hand a bad name to the handler', async () => {
      // v1.0.0's `write recent table *` form.
      assert.equal((await rawExchange(run.path, [hex('EF AB 07 08 00 0C 01 2A')])).toString(), 'Command error');
      assert.deepEqual(daemon.calls, []);
    });
  });

  describe('clients that leave early', () => {
    it('survive a client that disconnects before a large reply is written', async () => {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let started = 0;
      const slow = await startServer(async (): Promise<Reply> => {
        started++;
        await gate;
        return { text: 'x'.repeat(4 << 20), status: 0 };
      });
      try {
        for (let i = 0; i < 3; i++) {
          const s = connect({ path: slow.path });
          await once(s, 'connect');
          s.write(encodeCommandFrame({ cmd: 'show-recent' }, { json: false, wantStatus: true }));
          await until(() => started === i + 1 || i > 0, 'the handler to start');
          s.destroy();
        }
        release();
        // With the client's side shut, only the write can tell; EPIPE is dropped, noted at info.
        await until(() => slow.logs.filter(([l, m]) => l === 'info' && /went away before its reply was sent \((EPIPE|ECONNRESET)\)|left before the reply/.test(m)).length === 3, 'the server to notice all three');
        // Still serving.
        const r = await sendCommand(slow.path, { cmd: 'show-mode' }, { json: false, wantStatus: true });
        assert.ok(!('notRunning' in r) && r.text.length === 4 << 20 && r.status === 0);
        assert.ok(!slow.logs.some(([l]) => l === 'error'));
      } finally {
        await slow.stop();
      }
    });

    it('survive a client that reads part of a reply and resets the connection', async () => {
      const big = await startServer(async () => ({ text: 'y'.repeat(8 << 20), status: 0 }));
      try {
        for (let i = 0; i < 3; i++) {
          const s = connect({ path: big.path });
          s.on('error', () => undefined);
          await once(s, 'connect');
          s.write(encodeCommandFrame({ cmd: 'show-recent' }));
          await once(s, 'data');
          s.destroy();
        }
        await sleep(50);
        const r = await sendCommand(big.path, { cmd: 'status' }, { json: false, wantStatus: true });
        assert.ok(!('notRunning' in r) && r.status === 0 && r.text.length === 8 << 20);
        assert.ok(!big.logs.some(([l]) => l !== 'info'), JSON.stringify(big.logs.filter(([l]) => l !== 'info')));
      } finally {
        await big.stop();
      }
    });
  });

  describe('handler contract', () => {
    it('runs one command at a time, in arrival order', async () => {
      let running = 0;
      let most = 0;
      const order: string[] = [];
      const serial = await startServer(async (cmd) => {
        running++;
        most = Math.max(most, running);
        order.push(cmd.cmd);
        await sleep(20);
        running--;
        return { text: cmd.cmd, status: 0 };
      });
      try {
        const cmds: Command[] = [{ cmd: 'write-recent' }, { cmd: 'show-mode' }, { cmd: 'status' }, { cmd: 'count-recent' }];
        const replies = await Promise.all(cmds.map((c) => sendCommand(serial.path, c, { json: false, wantStatus: true })));
        assert.equal(most, 1);
        assert.deepEqual(new Set(order), new Set(cmds.map((c) => c.cmd)));
        assert.deepEqual(
          replies.map((r) => ('notRunning' in r ? 'none' : r.text)),
          cmds.map((c) => c.cmd),
        );
      } finally {
        await serial.stop();
      }
    });

    it('turns a handler failure into `error: <why>` with status 1, logged', async () => {
      const failing = await startServer(async () => {
        throw new Error('proc write failed: EACCES');
      });
      try {
        assert.deepEqual(await sendCommand(failing.path, { cmd: 'write-recent' }, { json: false, wantStatus: true }), { text: 'error: proc write failed: EACCES', status: 1 });
        assert.ok(failing.logs.some(([l, m]) => l === 'error' && m === 'control: "write recent" failed: proc write failed: EACCES'));
      } finally {
        await failing.stop();
      }
    });

    it('logs every command with the peer pid and uid', async () => {
      await sendCommand(run.path, { cmd: 'start-http', farm: 'web' }, { json: false, wantStatus: true });
      assert.ok(run.logs.some(([l, m]) => l === 'info' && m === `control: "start http web" from pid ${process.pid} uid ${process.getuid!()}`));
    });

    it('delivers the reply to quit when the daemon closes the server right after', async () => {
      let server: ControlServer | undefined;
      const q = await startServer(async (cmd) => {
        if (cmd.cmd === 'quit') setImmediate(() => void server!.close());
        return { text: '', status: 0 };
      });
      server = q.server;
      try {
        assert.deepEqual(await sendCommand(q.path, { cmd: 'quit' }, { json: false, wantStatus: true }), { text: '', status: 0 });
        await server.close();
        await assert.rejects(lstat(q.path), { code: 'ENOENT' });
        assert.deepEqual(await sendCommand(q.path, { cmd: 'show-mode' }, { json: false, wantStatus: true }), { notRunning: true });
      } finally {
        await q.stop();
      }
    });

    it('refuses connections over the limit with a text', async () => {
      const few = await startServer(daemon.handler, { maxConnections: 2 });
      const idle = [connect({ path: few.path }), connect({ path: few.path })];
      try {
        await Promise.all(idle.map((s) => once(s, 'connect')));
        await sleep(20);
        assert.equal((await rawExchange(few.path, [encodeCommandFrame({ cmd: 'show-mode' })])).toString(), 'Too many control connections');
        for (const s of idle) s.destroy();
        await until(() => few.logs.filter(([, m]) => m.includes('sent no command')).length === 2, 'the idle ones to go');
        // Their closes are handled right after those lines, when the event loop gets to them (a busy
        // machine can take a while): served again once it has.
        const servedBy = Date.now() + 5000;
        let reply = '';
        while ((reply = (await rawExchange(few.path, [encodeCommandFrame({ cmd: 'show-mode' })])).toString()) !== 'master' && Date.now() < servedBy) await sleep(20);
        assert.equal(reply, 'master');
      } finally {
        for (const s of idle) s.destroy();
        await few.stop();
      }
    });
  });

  describe('the socket file', () => {
    it('is mode 0600 in a directory created with mode 0700', async () => {
      assert.equal((await stat(run.path)).mode & 0o777, 0o600);
      assert.ok((await lstat(run.path)).isSocket());
      assert.equal((await stat(join(run.dir, 'run'))).mode & 0o777, 0o700);
      assert.ok(run.logs.some(([, m]) => m.includes('created control socket directory')));
    });

    it('replaces a stale socket file nobody answers on', async () => {
      const t = tempDir();
      const path = join(t.dir, 'stale.sock');
      // A process that bound the path and was killed leaves the file behind.
      const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
      await once(child.stdout!, 'data');
      child.kill('SIGKILL');
      await once(child, 'exit');
      assert.ok((await lstat(path)).isSocket());
      assert.deepEqual(await sendCommand(path, { cmd: 'show-mode' }, { json: false, wantStatus: true }), { notRunning: true });
      const s = await startServer(daemon.handler, { path });
      try {
        assert.ok(s.logs.some(([l, m]) => l === 'warn' && m.includes('removed a stale socket file')));
        assert.deepEqual(await sendCommand(path, { cmd: 'show-mode' }, { json: false, wantStatus: true }), { text: 'master', status: 0 });
      } finally {
        await s.stop();
        t.remove();
      }
    });

    it('is not taken from a live daemon: a second server is refused and the first keeps it', async () => {
      const logs: string[] = [];
      await assert.rejects(
        ControlServer.listen({ path: run.path, handler: daemon.handler, log: (_l, m) => logs.push(m) }),
        (e: unknown) => e instanceof ControlServerError && e.code === 'IN_USE' && e.message === `control socket ${run.path}: in use by a running daemon (pid ${process.pid}); not taking it over`,
      );
      assert.deepEqual(await sendCommand(run.path, { cmd: 'show-mode' }, { json: false, wantStatus: true }), { text: 'master', status: 0 });
    });

    it('is not created over a file that is not a socket', async () => {
      const t = tempDir();
      const path = join(t.dir, 'ssyncd.sock');
      writeFileSync(path, 'precious');
      try {
        await assert.rejects(
          ControlServer.listen({ path, handler: daemon.handler, log: () => undefined }),
          (e: unknown) => e instanceof ControlServerError && e.code === 'NOT_A_SOCKET',
        );
        assert.equal(readFileSync(path, 'utf8'), 'precious');
      } finally {
        t.remove();
      }
    });

    it('is removed by close(), and a closed server says not running', async () => {
      const s = await startServer(daemon.handler);
      await s.server.close();
      await assert.rejects(lstat(s.path), { code: 'ENOENT' });
      assert.deepEqual(await exchange(s.path, encodeCommandFrame({ cmd: 'show-mode' })), { notRunning: true });
      await s.stop(); // close() again is harmless
    });
  });
});
