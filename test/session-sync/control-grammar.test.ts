// ssyncdctl's words and options: every command of spec 3.3 plus ours, and every usage error, with
// v1.0.0's texts where it had one.

import { strict as assert } from 'node:assert';
import type { Command } from '../../session-sync/control/commands.js';
import { DEFAULT_CONTROL_SOCKET } from '../../session-sync/control/frame.js';
import { parseArgv, parseWords, USAGE_ERRORS, USAGE_TEXT } from '../../session-sync/control/grammar.js';

const COMMANDS: readonly (readonly [string, Command])[] = [
  ['start recent', { cmd: 'start-recent' }],
  ['stop recent', { cmd: 'stop-recent' }],
  ['start http farm1', { cmd: 'start-http', farm: 'farm1' }],
  ['stop http farm1', { cmd: 'stop-http', farm: 'farm1' }],
  ['show http', { cmd: 'show-http' }],
  ['count http', { cmd: 'count-http' }],
  ['clear http', { cmd: 'clear-http' }],
  ['write http', { cmd: 'write-http' }],
  ['show recent', { cmd: 'show-recent' }],
  ['count recent', { cmd: 'count-recent' }],
  ['clear recent', { cmd: 'clear-recent' }],
  ['clear recent table _web_1_sessions', { cmd: 'clear-recent-table', table: '_web_1_sessions' }],
  ['write recent', { cmd: 'write-recent' }],
  // v1.0.0 sent WRITE_RECENT (all tables) here: the table is what is written now.
  ['write recent table _web_1_sessions', { cmd: 'write-recent-table', table: '_web_1_sessions' }],
  ['switch master port 9999', { cmd: 'switch-master', port: 9999 }],
  ['switch backup address 10.0.0.1 port 9999', { cmd: 'switch-backup', address: '10.0.0.1', port: 9999 }],
  ['switch backup address 2001:DB8:0::1 port 7777', { cmd: 'switch-backup', address: '2001:db8::1', port: 7777 }],
  ['show mode', { cmd: 'show-mode' }],
  ['quit', { cmd: 'quit' }],
  ['start nft filter sticky', { cmd: 'start-nft', ref: { kind: 'nft', family: 'inet', table: 'filter', set: 'sticky' } }],
  ['start nft ip6 filter sticky', { cmd: 'start-nft', ref: { kind: 'nft', family: 'ip6', table: 'filter', set: 'sticky' } }],
  ['stop nft filter sticky', { cmd: 'stop-nft', ref: { kind: 'nft', family: 'inet', table: 'filter', set: 'sticky' } }],
  ['stop nft bridge t s', { cmd: 'stop-nft', ref: { kind: 'nft', family: 'bridge', table: 't', set: 's' } }],
  ['show nft', { cmd: 'show-nft' }],
  ['count nft', { cmd: 'count-nft' }],
  ['write nft', { cmd: 'write-nft' }],
  ['clear nft', { cmd: 'clear-nft' }],
  ['status', { cmd: 'status' }],
];

const USAGE: readonly (readonly [string, string])[] = [
  ['', 'Command not valid:'],
  ['frobnicate', 'Command not valid: frobnicate'],
  ['show mode extra', 'Command not valid: unexpected extra'],
  ['quit now', 'Command not valid: unexpected now'],
  ['status all', 'Command not valid: unexpected all'],
  ['start', 'target to start not valid'],
  ['start mail', 'target to start not valid: mail'],
  ['start recent now', 'Command not valid: unexpected now'],
  ['start http', 'no farm specified'],
  ['stop http', 'no farm specified'],
  ['start http ../etc', 'farm name not valid: farm name may only hold letters, digits and _ . -'],
  ['start http ..', 'farm name not valid: farm name may not be . or ..'],
  ['start http farm1 farm2', 'Command not valid: unexpected farm2'],
  ['stop', 'service to stop not valid'],
  ['stop mail', 'unknown service: mail'],
  ['show', 'service not valid'],
  ['show mail', 'service not valid: mail'],
  ['count', 'service not valid'],
  ['count mode', 'service not valid: mode'],
  ['clear', 'service not valid'],
  ['clear mode', 'service not valid: mode'],
  ['write', 'service not valid'],
  ['write everything', 'service not valid: everything'],
  ['write recent table', 'table name not specified'],
  ['clear recent table', 'table name not specified'],
  ['write recent table *', 'table name not valid: table name may only hold letters, digits and _ . : + -'],
  ['clear recent table ..', 'table name not valid: table name may not be . or ..'],
  ['write recent t1', 'Command not valid: unexpected t1'],
  ['write recent table t1 t2', 'Command not valid: unexpected t2'],
  ['switch', 'mode not valid'],
  ['switch client', 'mode not valid: client'],
  ['switch master', ' port number not valid'],
  ['switch master 9999', ' port number not valid'],
  ['switch master port', ' port number not valid'],
  ['switch master port 0', ' port number not valid'],
  ['switch master port 65536', ' port number not valid'],
  ['switch master port 99x', ' port number not valid'],
  ['switch master port 9999 now', 'Command not valid: unexpected now'],
  ['switch backup', 'address not valid'],
  ['switch backup 10.0.0.1 port 9999', 'address not valid'],
  ['switch backup address', 'address not valid'],
  ['switch backup address master.example port 9999', 'address not valid: master.example'],
  ['switch backup address 10.0.0.256 port 9999', 'address not valid: 10.0.0.256'],
  ['switch backup address 10.0.0.1', ' port number not valid'],
  ['switch backup address 10.0.0.1 port 70000', ' port number not valid'],
  ['start nft', 'nft set not specified'],
  ['start nft sticky', 'nft set not specified'],
  ['stop nft filter', 'nft set not specified'],
  ['start nft inet filter sticky more', 'Command not valid: unexpected more'],
  ['start nft foo filter sticky', 'nft set not valid: unknown nftables family "foo" (one of ip, ip6, inet, arp, bridge, netdev)'],
  ['start nft filter 1sticky', 'nft set not valid: set name must start with a letter or _ and hold only letters, digits and _ . -'],
];

const words = (line: string): string[] => (line === '' ? [] : line.split(' '));

describe('ssyncdctl grammar', () => {
  for (const [line, command] of COMMANDS) {
    it(`reads \`${line}\``, () => {
      assert.deepEqual(parseWords(words(line)), { ok: true, command });
      assert.deepEqual(parseArgv(words(line)), { kind: 'command', command, options: { json: false, wantStatus: true }, socket: DEFAULT_CONTROL_SOCKET });
    });
  }

  for (const [line, message] of USAGE) {
    it(`refuses \`${line}\` with ${JSON.stringify(message)}`, () => {
      assert.deepEqual(parseWords(words(line)), { ok: false, message });
      assert.deepEqual(parseArgv(words(line)), { kind: 'usage', message });
    });
  }

  it('keeps v1.0.0 missing-word texts exactly', () => {
    assert.deepEqual(
      [USAGE_ERRORS.noFarm, USAGE_ERRORS.startTarget, USAGE_ERRORS.stopService, USAGE_ERRORS.service, USAGE_ERRORS.noTable, USAGE_ERRORS.mode, USAGE_ERRORS.port, USAGE_ERRORS.command],
      ['no farm specified', 'target to start not valid', 'service to stop not valid', 'service not valid', 'table name not specified', 'mode not valid', ' port number not valid', 'Command not valid:'],
    );
  });

  describe('options', () => {
    it('takes -s <path>, --socket <path> and --socket=<path> anywhere among the words', () => {
      const expect = { kind: 'command', command: { cmd: 'show-mode' }, options: { json: false, wantStatus: true }, socket: '/tmp/x.sock' };
      assert.deepEqual(parseArgv(['-s', '/tmp/x.sock', 'show', 'mode']), expect);
      assert.deepEqual(parseArgv(['show', '--socket', '/tmp/x.sock', 'mode']), expect);
      assert.deepEqual(parseArgv(['show', 'mode', '--socket=/tmp/x.sock']), expect);
      assert.deepEqual(parseArgv(['show', 'mode'], '/elsewhere.sock'), { ...expect, socket: '/elsewhere.sock' });
    });

    it('takes --json on every show, count and status', () => {
      for (const line of ['show recent', 'show http', 'show nft', 'show mode', 'count recent', 'count http', 'count nft', 'status']) {
        const r = parseArgv(['--json', ...words(line)]);
        assert.equal(r.kind, 'command', line);
        assert.deepEqual(r.kind === 'command' && r.options, { json: true, wantStatus: true });
      }
    });

    it('refuses --json elsewhere', () => {
      for (const line of ['start recent', 'write recent', 'quit', 'clear nft', 'switch master port 1']) {
        assert.deepEqual(parseArgv([...words(line), '--json']), { kind: 'usage', message: '--json applies only to show, count and status' }, line);
      }
    });

    it('refuses unknown options and a missing socket path; -- ends the options', () => {
      assert.deepEqual(parseArgv(['-x', 'quit']), { kind: 'usage', message: 'unknown option -x' });
      assert.deepEqual(parseArgv(['--verbose', 'quit']), { kind: 'usage', message: 'unknown option --verbose' });
      assert.deepEqual(parseArgv(['quit', '-s']), { kind: 'usage', message: 'option -s needs a socket path' });
      assert.deepEqual(parseArgv(['--socket', '', 'quit']), { kind: 'usage', message: 'option --socket needs a socket path' });
      assert.deepEqual(parseArgv(['--socket=', 'quit']), { kind: 'usage', message: 'option --socket needs a socket path' });
      assert.deepEqual(parseArgv(['--', '--json']), { kind: 'usage', message: 'Command not valid: --json' });
      assert.deepEqual(parseArgv(['--', 'show', 'mode']).kind, 'command');
      // A negative port reads as an option on the command line; as a word it is a bad port.
      assert.deepEqual(parseArgv(['switch', 'master', 'port', '-1']), { kind: 'usage', message: 'unknown option -1' });
      assert.deepEqual(parseWords(['switch', 'master', 'port', '-1']), { ok: false, message: ' port number not valid' });
      // A lone dash is a word, not an option.
      assert.deepEqual(parseArgv(['-']), { kind: 'usage', message: 'Command not valid: -' });
    });

    it('answers help, -h and --help with the usage text, which lists every command', () => {
      for (const argv of [['help'], ['-h'], ['--help'], ['help', 'start'], ['show', '--help']]) assert.deepEqual(parseArgv(argv), { kind: 'help' });
      for (const w of ['start recent', 'start http <farm>', 'start nft [<family>] <table> <set>', 'stop nft', 'show mode', 'count recent|http|nft', 'clear recent [table <name>]', 'write recent [table <name>]', 'switch master port <port>', 'switch backup address <addr> port <port>', 'status', 'quit', '--json', '-s, --socket <path>', DEFAULT_CONTROL_SOCKET, '254']) {
        assert.ok(USAGE_TEXT.includes(w), w);
      }
    });
  });
});
