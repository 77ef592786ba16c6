// Behaviour of debugcomm dumps: exact chunk bytes, ordering, reset at test start, missing directory.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { commDumpEnabled, commDumpPath, createCommDump, formatCommChunk } from '../surealived/debugcomm.js';
import { memLogger, tempDir } from './state/fixtures.js';

const at = (us: number): number => new Date(2024, 4, 1, 12, 0, 0).getTime() * 1000 + us;

describe('debugcomm (spec 4.7)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('formats a chunk as timestamp, two spaces, tag, newline, raw bytes, newline', () => {
    const data = Buffer.from('GET / HTTP/1.0\r\n\r\n');
    assert.equal(formatCommChunk(at(42), 'write', data).toString(), '[2024-05-01 12:00:00.000042]  sd_write ->\nGET / HTTP/1.0\r\n\r\n\n');
    assert.equal(formatCommChunk(at(999_999), 'read', Buffer.from('x')).toString(), '[2024-05-01 12:00:00.999999]  sd_read <-\nx\n');
    assert.equal(formatCommChunk(at(0), 'read_av', Buffer.alloc(0)).toString(), '[2024-05-01 12:00:00.000000]  sd_read_av <-\n\n');
    assert.equal(formatCommChunk(at(1), 'eof', Buffer.alloc(0)).toString(), '[2024-05-01 12:00:00.000001]  sd_eof <-\n\n');
  });

  it('keeps binary data byte for byte', () => {
    const bin = Buffer.from([0, 255, 10, 13, 128]);
    const chunk = formatCommChunk(at(0), 'read', bin);
    assert.deepEqual(chunk.subarray(chunk.length - 6, chunk.length - 1), bin);
  });

  it('names the file <debug_comm_path>/<vname>_<rname>', () => {
    assert.equal(commDumpPath('/var/log/surealived/comm', 'www', 'r1'), '/var/log/surealived/comm/www_r1');
  });

  it('is on only when both the global switch and the tester attribute are', () => {
    assert.equal(commDumpEnabled(true, true), true);
    assert.equal(commDumpEnabled(true, false), false);
    assert.equal(commDumpEnabled(false, true), false);
  });

  it('appends chunks in order and restarts the file at each test start', async () => {
    const path = commDumpPath(tmp.dir, 'www', 'r1');
    writeFileSync(path, 'previous test\n');
    let t = at(0);
    const dump = createCommDump(path, memLogger().log, () => (t += 1));
    dump.reset();
    dump.record('write', Buffer.from('ping'));
    dump.record('read', Buffer.from('pong'));
    dump.record('eof', Buffer.alloc(0));
    await dump.flush();
    assert.equal(
      readFileSync(path, 'utf8'),
      '[2024-05-01 12:00:00.000001]  sd_write ->\nping\n[2024-05-01 12:00:00.000002]  sd_read <-\npong\n[2024-05-01 12:00:00.000003]  sd_eof <-\n\n',
    );
    dump.reset();
    await dump.flush();
    assert.equal(existsSync(path), false);
    dump.reset();
    await dump.flush();
  });

  it('a missing directory is logged once, never thrown, and the dump recovers', async () => {
    const dir = join(tmp.dir, 'comm');
    const { log, lines } = memLogger();
    const dump = createCommDump(commDumpPath(dir, 'v', 'r'), log);
    dump.record('read_av', Buffer.from('a'));
    dump.record('read_av', Buffer.from('b'));
    await dump.flush();
    assert.equal(lines.filter((l) => l.includes('debugcomm: unable to write')).length, 1);
    mkdirSync(dir);
    dump.record('read', Buffer.from('c'));
    await dump.flush();
    assert.match(readFileSync(commDumpPath(dir, 'v', 'r'), 'utf8'), /sd_read <-\nc\n$/);
  });
});
