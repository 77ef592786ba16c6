// parseMainConfig's rules (spec 2.1, README "Main configuration"): literal file texts in, values out.

import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadMainConfig, parseMainConfig } from '../../common/main-config.js';

describe('main config parsing (spec 2.1)', () => {
  describe('comments: a # only in column 1', () => {
    it('a line starting with # is skipped', () => {
      const c = parseMainConfig('#listen_port 99\n');
      assert.equal(c.listenPort, 1337);
      assert.equal(c.raw.size, 0);
    });

    it('a # inside the value is part of the value', () => {
      const c = parseMainConfig('log /var/log/sd#1.log\nmodules http#dns\n');
      assert.equal(c.log, '/var/log/sd#1.log');
      assert.equal(c.modules, 'http#dns');
    });

    it('a value that starts with # is a value, not a comment', () => {
      assert.equal(parseMainConfig('log #stderr\n').log, '#stderr');
    });

    it('anything after the value is ignored, so "key value # comment" works', () => {
      const c = parseMainConfig('listen_port 99 # the control port\nlisten_addr 127.0.0.2 #x y z\n');
      assert.equal(c.listenPort, 99);
      assert.equal(c.listenAddr, '127.0.0.2');
    });

    it('an indented # is not a comment: it is read as a key of its own (unknown, ignored)', () => {
      const c = parseMainConfig('  #listen_port 99\n');
      assert.equal(c.listenPort, 1337);
      assert.equal(c.raw.get('#listen_port'), '99');
    });
  });

  describe('lines', () => {
    it('later duplicates win (and the line number is that of the last one)', () => {
      const c = parseMainConfig('listen_port 1000\nlogging debug\nlisten_port 2000\n');
      assert.equal(c.listenPort, 2000);
      assert.equal(c.lines.get('listen_port'), 3);
      assert.equal(c.logging, 'debug');
    });

    it('a key without a value is ignored (the default stays)', () => {
      const c = parseMainConfig('listen_port\nlisten_port   \n');
      assert.equal(c.listenPort, 1337);
      assert.equal(c.raw.has('listen_port'), false);
    });

    it('tokens are separated by any whitespace; leading and trailing whitespace and CR are ignored', () => {
      const c = parseMainConfig('  listen_port\t\t4242\r\nlisten_addr 127.0.0.3 \t\r\n');
      assert.equal(c.listenPort, 4242);
      assert.equal(c.listenAddr, '127.0.0.3');
    });

    it('unknown keys are kept in raw and change nothing', () => {
      const c = parseMainConfig('no_such_key 7\n');
      assert.equal(c.raw.get('no_such_key'), '7');
      assert.deepEqual({ ...c, raw: null, lines: null }, { ...parseMainConfig(''), raw: null, lines: null });
    });

    it('an empty text gives the defaults of spec 2.2', () => {
      const c = parseMainConfig('');
      assert.equal(c.listenAddr, '127.0.0.1');
      assert.equal(c.listenPort, 1337);
      assert.equal(c.useLog, false);
      assert.equal(c.logging, 'info');
      assert.equal(c.useOfflineDump, true);
      assert.equal(c.gatherStats, true);
      assert.equal(c.noSync, false);
      assert.equal(c.memlimit, 0);
      assert.equal(c.loopIntervalMs, 100);
      assert.equal(c.startupDelayMs, 1000);
      assert.equal(c.statsDumpSavesec, 60);
      assert.equal(c.offlineDump, '/var/lib/surealived/offline.dump');
      assert.equal(c.ipvssyncLogging, 'debug');
      // Extensions
      assert.equal(c.controlSocket, '');
      assert.equal(c.metricsListenPort, 0);
      assert.equal(c.controlMaxClients, 1024);
      assert.equal(c.controlIdleTimeout, 60);
    });
  });

  describe('booleans: true iff the value starts with T or t', () => {
    const cases: Array<[string, boolean]> = [
      ['T', true],
      ['t', true],
      ['true', true],
      ['True', true],
      ['TRUE', true],
      ['Txyz', true],
      ['tomato', true],
      ['yes', false],
      ['1', false],
      ['on', false],
      ['Y', false],
      ['false', false],
      ['F', false],
    ];
    for (const [value, expected] of cases) {
      it(`use_log ${value} -> ${expected}`, () => {
        assert.equal(parseMainConfig(`use_log ${value}\n`).useLog, expected);
      });
    }

    it('a default-true key is switched off by anything not starting with T/t (use_offline_dump 1 -> false)', () => {
      assert.equal(parseMainConfig('use_offline_dump 1\n').useOfflineDump, false);
      assert.equal(parseMainConfig('gather_stats yes\n').gatherStats, false);
    });

    it('debug_comm is not a boolean: only the exact value 1 enables it', () => {
      assert.equal(parseMainConfig('debug_comm 1\n').debugComm, true);
      assert.equal(parseMainConfig('debug_comm true\n').debugComm, false);
      assert.equal(parseMainConfig('debug_comm 01\n').debugComm, false);
    });
  });

  describe('log levels: exact and case-sensitive, an unknown name means error', () => {
    const cases: Array<[string, string]> = [
      ['error', 'error'],
      ['warn', 'warn'],
      ['info', 'info'],
      ['debug', 'debug'],
      ['dbdet', 'dbdet'],
      ['Debug', 'error'],
      ['INFO', 'error'],
      ['debdt', 'error'], // the spelling of the original's documentation [DOC≠CODE]
      ['warning', 'error'],
      ['3', 'error'],
    ];
    for (const [value, expected] of cases) {
      it(`logging ${value} -> ${expected}`, () => {
        assert.equal(parseMainConfig(`logging ${value}\n`).logging, expected);
      });
    }

    it('ipvssync_logging follows the same rule', () => {
      assert.equal(parseMainConfig('ipvssync_logging Info\n').ipvssyncLogging, 'error');
      assert.equal(parseMainConfig('ipvssync_logging warn\n').ipvssyncLogging, 'warn');
    });
  });

  describe('integers as C atoi', () => {
    it('leading digits count, garbage after them is dropped, no digits gives 0', () => {
      assert.equal(parseMainConfig('listen_port 12ab\n').listenPort, 12);
      assert.equal(parseMainConfig('listen_port abc\n').listenPort, 0);
      assert.equal(parseMainConfig('memlimit 128000kB\n').memlimit, 128000);
      assert.equal(parseMainConfig('control_idle_timeout +5\n').controlIdleTimeout, 5);
    });

    it('epoll_size is at least 256', () => {
      assert.equal(parseMainConfig('epoll_size 10\n').epollSize, 256);
      assert.equal(parseMainConfig('epoll_size 1024\n').epollSize, 1024);
    });
  });

  describe('loadMainConfig', () => {
    let dir: string;
    beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'sd-maincfg-'))));
    afterEach(() => rmSync(dir, { recursive: true, force: true }));

    it('a missing file gives the defaults and says so', () => {
      const r = loadMainConfig(join(dir, 'none.cfg'));
      assert.equal(r.missing, true);
      assert.equal(r.config.listenPort, 1337);
    });

    it('a file is parsed with the same rules', () => {
      writeFileSync(join(dir, 's.cfg'), '# comment\nlisten_port 1\nuse_log t\nlisten_port 2 # later wins\n');
      const r = loadMainConfig(join(dir, 's.cfg'));
      assert.equal(r.missing, false);
      assert.equal(r.config.listenPort, 2);
      assert.equal(r.config.useLog, true);
    });
  });
});
