// ssyncd's command line and configuration: the original's options and help, our additions, and
// start-up failures that say why (a daemonizing parent exits 1 with the reason, not 0 as the original).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'mocha';
import { parseConfig, parseNftList } from '../../ssyncd/config.js';
import { HELP_TEXT, parseArgs } from '../../ssyncd/options.js';
import { SSYNCD, SSYNCDCTL } from '../helpers/ssyncd.js';

function run(cmd: string, args: string[], timeout = 20_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(process.execPath, [cmd, ...args], { timeout }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

describe('ssyncd options (pure)', () => {
  it('takes the original options in every getopt spelling; the last of -M/-B wins', () => {
    const r = parseArgs(['-B', '-a', '10.0.0.1', '--port=9999', '-Md']);
    assert.ok(r.ok);
    assert.deepEqual(r.options, { mode: 'master', daemon: true, help: false, address: '10.0.0.1', port: 9999, bind: undefined, keyFile: undefined, config: undefined, socket: undefined });
    const g = parseArgs(['-Bp7777', '-a2001:db8::1', '--bind', 'fd00::2', '-k', '/k', '--socket', '/s', '--daemon']);
    assert.ok(g.ok);
    assert.equal(g.options.address, '2001:db8::1');
    assert.equal(g.options.port, 7777);
    assert.equal(g.options.bind, 'fd00::2');
    assert.equal(g.options.daemon, true, '--daemon takes no argument (the original required one)');
  });

  it('refuses a junk port instead of turning it into 0, and says which option lacks a value', () => {
    assert.deepEqual(parseArgs(['-M', '-p', 'x77']), { ok: false, error: 'port "x77" is not 1-65535' });
    assert.deepEqual(parseArgs(['-M', '-p', '70000']), { ok: false, error: 'port "70000" is not 1-65535' });
    assert.deepEqual(parseArgs(['-B', '-a']), { ok: false, error: 'option -a needs a value' });
    assert.deepEqual(parseArgs(['-M', '--colour']), { ok: false, error: 'unknown option --colour' });
    assert.deepEqual(parseArgs(['-M', 'extra']), { ok: false, error: 'unexpected argument "extra"' });
  });
});

describe('ssyncd config (pure)', () => {
  it('reads every key with its type; sync_nft takes a list with inet as the default family', () => {
    const r = parseConfig(
      ['# comment', 'mode backup', 'master_address fd00::1', 'port 9999', 'poll_interval_ms 250', 'sync_recent yes', 'sync_nft lb persist4, ip6 lb m6', 'journal none', 'logging debug', 'tables_apply continuous'].join('\n'),
      'x.cfg',
    );
    assert.ok(r.ok);
    assert.equal(r.config.mode, 'backup');
    assert.equal(r.config.masterAddress, 'fd00::1');
    assert.equal(r.config.port, 9999);
    assert.equal(r.config.pollIntervalMs, 250);
    assert.equal(r.config.syncRecent, true);
    assert.equal(r.config.journal, undefined);
    assert.equal(r.config.tablesApply, 'continuous');
    assert.deepEqual(r.config.syncNft, [
      { kind: 'nft', family: 'inet', table: 'lb', set: 'persist4' },
      { kind: 'nft', family: 'ip6', table: 'lb', set: 'm6' },
    ]);
  });

  it('names the file, the line and why for every bad value, and refuses unknown keys', () => {
    const r = parseConfig(['port 0', 'poll_interval_ms fast', 'sync_recent perhaps', 'bind example.org', 'colour blue', 'sync_nft inet', 'tables_apply always'].join('\n'), '/etc/ssyncd/ssyncd.cfg');
    assert.ok(!r.ok);
    assert.deepEqual(r.errors, [
      '/etc/ssyncd/ssyncd.cfg:1: port: "0" is not a port 1-65535',
      '/etc/ssyncd/ssyncd.cfg:2: poll_interval_ms: "fast" is not a whole number from 50 to 60000',
      '/etc/ssyncd/ssyncd.cfg:3: sync_recent: "perhaps" is not yes or no',
      '/etc/ssyncd/ssyncd.cfg:4: bind: "example.org" is not an IPv4 or IPv6 address',
      '/etc/ssyncd/ssyncd.cfg:5: colour: unknown key',
      '/etc/ssyncd/ssyncd.cfg:6: sync_nft: "inet" is not "[family] table set"',
      '/etc/ssyncd/ssyncd.cfg:7: tables_apply: "always" is not on-write or continuous',
    ]);
    assert.match(parseNftList('inet lb ../x').error ?? '', /set name must start/);
  });
});

describe('ssyncd command line (real processes)', function () {
  this.timeout(60_000);
  const dir = mkdtempSync(join(tmpdir(), 'ssyncd-cli-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('-h prints the original help text, then our options, and exits 0', async () => {
    const r = await run(SSYNCD, ['-h']);
    assert.equal(r.code, 0);
    assert.ok(r.stdout.startsWith(`${HELP_TEXT}\n`));
    assert.ok(r.stdout.startsWith('Zevenet Ssyncd v1.0.0 \n\nUsage: ssyncd -[MB] [adp]\n    \nExamples\n'));
    assert.match(r.stdout, /-k {2}--key/);
  });

  it('no mode prints the help and exits 1; -B without -a says so and exits 1', async () => {
    const none = await run(SSYNCD, ['-c', '/dev/null']);
    assert.equal(none.code, 1);
    assert.ok(none.stdout.startsWith(HELP_TEXT));
    const b = await run(SSYNCD, ['-B', '-c', '/dev/null']);
    assert.equal(b.code, 1);
    assert.equal(b.stdout, 'Need to specify master ip with option -a\n');
  });

  it('a key file others can read is refused with the reason, before anything listens', async () => {
    const key = join(dir, 'open.key');
    writeFileSync(key, 'x'.repeat(40));
    chmodSync(key, 0o644);
    const cfg = join(dir, 'a.cfg');
    writeFileSync(cfg, `control_socket ${join(dir, 'a.sock')}\njournal none\n`);
    const r = await run(SSYNCD, ['-M', '-p', '7790', '-b', '127.0.0.1', '-k', key, '-c', cfg]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /key file .*open\.key: mode 644 lets others read it; chmod 600/);
  });

  it('-d returns 0 once the daemon is ready, and 1 with the reason when start-up fails (the original always returned 0)', async () => {
    const cfg = join(dir, 'd.cfg');
    const sock = join(dir, 'd.sock');
    writeFileSync(cfg, `control_socket ${sock}\njournal none\nlog ${join(dir, 'd.log')}\n`);
    const ok = await run(SSYNCD, ['-M', '-d', '-p', '7791', '-b', '127.0.0.1', '-c', cfg]);
    assert.equal(ok.code, 0, ok.stderr);
    const mode = await run(SSYNCDCTL, ['-s', sock, 'show', 'mode']);
    assert.equal(mode.stdout, 'master\n');
    // A second daemon on the same control socket is refused, and says why.
    const again = await run(SSYNCD, ['-M', '-d', '-p', '7792', '-b', '127.0.0.1', '-c', cfg]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /another ssyncd is running/);
    const q = await run(SSYNCDCTL, ['-s', sock, 'quit']);
    assert.equal(q.code, 0);
    assert.equal(q.stdout, '');
    const gone = await run(SSYNCDCTL, ['-s', sock, 'show', 'mode']);
    assert.equal(gone.code, 254);
    assert.equal(gone.stdout, 'ssyncd daemon not running\n');
  });

  it('a backup that holds no copy of the overrides refuses `write overrides` instead of resetting everything', async () => {
    const cfg = join(dir, 'w.cfg');
    const sock = join(dir, 'w.sock');
    writeFileSync(cfg, `control_socket ${sock}\njournal none\nsurealived_control 127.0.0.1:1\nsync_overrides yes\n`);
    const up = await run(SSYNCD, ['-B', '-d', '-a', '127.0.0.1', '-p', '7794', '-c', cfg]);
    assert.equal(up.code, 0, up.stderr);
    try {
      const w = await run(SSYNCDCTL, ['-s', sock, 'write', 'overrides']);
      assert.equal(w.code, 1);
      assert.equal(w.stdout, "error writing overrides: no copy of the master's overrides yet (is `start overrides` running on the master?)\n");
    } finally {
      await run(SSYNCDCTL, ['-s', sock, 'quit']);
    }
  });

  it('a port already taken fails start-up with the reason', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(7793, '127.0.0.1', () => r()));
    try {
      const cfg = join(dir, 'p.cfg');
      writeFileSync(cfg, `control_socket ${join(dir, 'p.sock')}\njournal none\n`);
      const r = await run(SSYNCD, ['-M', '-d', '-p', '7793', '-b', '127.0.0.1', '-c', cfg]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });
});
