// The logger under systemd (common/log.ts): when stderr is the journal (JOURNAL_STREAM names its
// device:inode) lines carry a syslog priority and no timestamp of ours; anywhere else, the original format.
// Kept under test/packaging/ with the package's other tests: it exists for the systemd units.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, formatJournalLine, memorySink, stderrGoesToJournal } from '../../common/log.js';
import { REPO } from '../kernel/guest-run.js';

const STAMP = /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\] /;

describe('logging to the journal (JOURNAL_STREAM)', () => {
  it('stderr is the journal only when JOURNAL_STREAM names the device and inode of fd 2', () => {
    const st = { dev: 2049, ino: 123456 };
    assert.equal(stderrGoesToJournal({ JOURNAL_STREAM: '2049:123456' }, () => st), true);
    assert.equal(stderrGoesToJournal({ JOURNAL_STREAM: '2049:999' }, () => st), false, 'stderr redirected elsewhere');
    assert.equal(stderrGoesToJournal({}, () => st), false, 'not under systemd');
    assert.equal(stderrGoesToJournal({ JOURNAL_STREAM: 'garbage' }, () => st), false);
    assert.equal(stderrGoesToJournal({ JOURNAL_STREAM: '2049:123456' }, () => { throw new Error('EBADF'); }), false);
  });

  it('a journal logger writes "<priority>level : message" with no timestamp, at the configured level', () => {
    const mem = memorySink();
    const log = createLogger('info', mem.sink, () => 1_700_000_000_000_000, true);
    log.error('boom');
    log.warn('careful');
    log.info('hello');
    log.debug('hidden');
    log.always('debug', 'banner');
    assert.deepEqual(mem.lines, ['<3>error : boom\n', '<4>warn  : careful\n', '<6>info  : hello\n', '<7>debug : banner\n']);
    assert.equal(formatJournalLine('dbdet', 'x'), '<7>dbdet : x\n');
  });

  it('any other sink keeps the original timestamped format', () => {
    const mem = memorySink();
    createLogger('info', mem.sink, () => 1_700_000_000_000_000).info('hello');
    assert.match(mem.lines[0]!, STAMP);
    assert.match(mem.lines[0]!, /\] info  : hello\n$/);
  });

  it('a process whose stderr is the stream JOURNAL_STREAM names logs without our timestamp; with another value, with it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'journal-log-'));
    try {
      const run = (journalStream: (path: string) => string): string => {
        const path = join(dir, `err-${Math.random().toString(36).slice(2)}`);
        const fd = openSync(path, 'w');
        try {
          const script = `import('${join(REPO, 'dist/common/log.js')}').then((m) => m.createLogger('info', m.stderrSink).info('started'))`;
          const r = spawnSync(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', fd], env: { ...process.env, JOURNAL_STREAM: journalStream(path) } });
          assert.equal(r.status, 0);
        } finally {
          closeSync(fd);
        }
        return readFileSync(path, 'utf8');
      };
      const ofFile = (path: string): string => {
        const fd = openSync(path, 'r');
        const st = fstatSync(fd, { bigint: true });
        closeSync(fd);
        return `${st.dev}:${st.ino}`;
      };
      assert.equal(run(ofFile), '<6>info  : started\n');
      assert.match(run(() => '1:1'), STAMP);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
