// Behaviour of the exec tester with real shell scripts: exit codes, argv/env, deadline kills of
// the whole process group, and no zombies or fd leaks over many runs.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execTester } from '../../testers/exec.js';
import type { AttrValues, ProbeResult } from '../../testers/contract.js';
import { deadline, target } from '../helpers/servers.js';
import { groupAlive, liveGroupMembers, openFdCount, scriptDir, waitFor, zombieChildren, type ScriptDir } from '../helpers/processes.js';

const compile = (values: AttrValues) => execTester.compile(values, { ssl: false, timeoutMs: 1000 });

async function timed(p: Promise<ProbeResult>): Promise<{ r: ProbeResult; ms: number }> {
  const t0 = performance.now();
  const r = await p;
  return { r, ms: performance.now() - t0 };
}

describe('exec tester', () => {
  let s: ScriptDir;
  before(() => {
    s = scriptDir();
  });
  after(() => s.remove());

  it('exit 0 is up, reported as soon as the program exits; argv and environment as documented', async () => {
    const out = join(s.dir, 'args.txt');
    const prog = s.script('ok.sh', `printf '%s\\n' "$0" "$@" "$SUREALIVED_VNAME" "$SUREALIVED_RNAME" "$SUREALIVED_RADDR" "$SUREALIVED_TESTPORT" "$HOME" > ${out}`);
    const { r, ms } = await timed(execTester.probe(target('127.0.0.5', 8080, 'web1'), compile({ exec: prog, params: ' -x  two\tthree ' }), deadline(5000)));
    assert.equal(r.ok, true, r.detail);
    assert.equal(r.detail, 'exit code 0');
    assert.ok(ms < 1000, `took ${ms} ms: must not wait for the deadline`);
    const lines = readFileSync(out, 'utf8').split('\n');
    assert.deepEqual(lines.slice(0, 9), [prog, '127.0.0.5', '8080', '-x', 'two', 'three', 'v1', 'web1', '127.0.0.5']);
    assert.equal(lines[9], '8080');
    assert.equal(lines[10], process.env.HOME ?? '', 'the environment is inherited');
  });

  it('every real gets all its params (the original shared-buffer bug is gone)', async () => {
    const prog = s.script('count.sh', 'test "$#" -eq 5');
    const p = compile({ exec: prog, params: 'a b c' });
    const results = await Promise.all(['127.0.0.1', '127.0.0.2', '127.0.0.3'].map((a) => execTester.probe(target(a, 1), p, deadline(5000))));
    for (const r of results) assert.equal(r.ok, true, r.detail);
  });

  it('a non-zero exit is down, with the last line of its output', async () => {
    const prog = s.script('fail.sh', 'echo "checking..."\necho "backend said: 500" >&2\necho\nexit 1');
    const r = await execTester.probe(target('127.0.0.1', 80), compile({ exec: prog }), deadline(5000));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'exit code 1: backend said: 500');
  });

  it('a program killed by a signal is down', async () => {
    const prog = s.script('segv.sh', 'kill -TERM $$');
    const r = await execTester.probe(target('127.0.0.1', 80), compile({ exec: prog }), deadline(5000));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'killed by SIGTERM');
  });

  it('a hanging program is killed at the deadline and reaped: its process group is gone', async () => {
    const pidFile = join(s.dir, 'hang.pid');
    const prog = s.script('hang.sh', `echo $$ > ${pidFile}\necho "still waiting"\nexec sleep 30`);
    const { r, ms } = await timed(execTester.probe(target('127.0.0.1', 80), compile({ exec: prog }), deadline(300)));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'still running after 300 ms, killed: still waiting');
    assert.ok(ms < 450, `took ${ms} ms`);
    const pgid = Number(readFileSync(pidFile, 'utf8').trim());
    // Killed at once; reaping (by node) follows within moments.
    assert.ok(await waitFor(() => !groupAlive(pgid), 1000), `process group ${pgid} still alive`);
    assert.throws(() => process.kill(-pgid, 0), (err: NodeJS.ErrnoException) => err.code === 'ESRCH');
  });

  it('the deadline kill takes the whole group, background children included', async () => {
    const pidFile = join(s.dir, 'hang-bg.pid');
    const prog = s.script('hang-bg.sh', `echo $$ > ${pidFile}\nsleep 30 &\nsleep 30`);
    const r = await execTester.probe(target('127.0.0.1', 80), compile({ exec: prog }), deadline(300));
    assert.equal(r.ok, false);
    const pgid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.ok(await waitFor(() => liveGroupMembers(pgid).length === 0, 1000), `still running: ${liveGroupMembers(pgid).join(' ')}`);
  });

  it('background children of a program that exits are not left behind', async () => {
    const pidFile = join(s.dir, 'bg.pid');
    const prog = s.script('bg.sh', `sleep 30 &\necho $$ > ${pidFile}\nexit 0`);
    const r = await execTester.probe(target('127.0.0.1', 80), compile({ exec: prog }), deadline(2000));
    assert.equal(r.ok, true, r.detail);
    const pgid = Number(readFileSync(pidFile, 'utf8').trim());
    assert.ok(await waitFor(() => liveGroupMembers(pgid).length === 0, 1000), `still running: ${liveGroupMembers(pgid).join(' ')}`);
  });

  it('a nonexistent program compiles, and probing it fails with a clear detail', async () => {
    const p = compile({ exec: '/nonexistent/check.sh' });
    const r = await execTester.probe(target('127.0.0.1', 80), p, deadline(1000));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'cannot run /nonexistent/check.sh: ENOENT');
  });

  it('exec is required', () => {
    assert.throws(() => compile({}), (err: Error & { attr?: string }) => err.name === 'AttrError' && err.attr === 'exec');
  });

  it('many runs leave no zombies and no extra open fds', async () => {
    const ok = s.script('ok2.sh', 'echo fine');
    const bad = s.script('bad2.sh', 'echo nope >&2; exit 3');
    const hang = s.script('hang2.sh', 'exec sleep 30');
    // Warm up once so lazily created fds (e.g. the child-process signal pipe) are not counted.
    await execTester.probe(target('127.0.0.1', 1), compile({ exec: ok }), deadline(1000));
    const fds = openFdCount();
    const progs = [compile({ exec: ok }), compile({ exec: bad }), compile({ exec: hang })];
    for (let round = 0; round < 4; round++) {
      const results = await Promise.all(
        Array.from({ length: 15 }, (_, i) => execTester.probe(target('127.0.0.1', 1), progs[i % 3]!, deadline(i % 3 === 2 ? 200 : 3000))),
      );
      results.forEach((r, i) => assert.equal(r.ok, i % 3 === 0, r.detail));
    }
    assert.ok(await waitFor(() => zombieChildren().length === 0, 1000), `zombies: ${zombieChildren().join(' ')}`);
    assert.ok(await waitFor(() => openFdCount() <= fds, 1000), `fds: ${fds} before, ${openFdCount()} after`);
  });
});
