// The daemon's reply texts: spec 3.4 byte for byte (typos and missing separators included), the
// show/count formats, our new texts, and the JSON shapes.

import { strict as assert } from 'node:assert';
import type { NftEntry, RecentEntry } from '../../session-sync/model.js';
import type { NftRef } from '../../session-sync/control/commands.js';
import {
  clearRecentTableReply,
  clearReply,
  commandErrorReply,
  countHttpReply,
  countNftReply,
  countRecentReply,
  formatCountHttp,
  formatCountNft,
  formatCountRecent,
  formatShowHttp,
  formatShowNft,
  formatShowRecent,
  formatStatus,
  peerRefusedText,
  quitReply,
  refusedReply,
  showHttpReply,
  showModeReply,
  showNftReply,
  showRecentReply,
  startHttpReply,
  startNftReply,
  startRecentReply,
  statusReply,
  stopHttpReply,
  stopNftReply,
  stopRecentReply,
  switchReply,
  TEXT,
  unknownCommandReply,
  writeHttpReply,
  writeNftReply,
  writeRecentReply,
  writeRecentTableReply,
  type HttpFarmView,
  type StatusView,
} from '../../session-sync/control/replies.js';

const recent = (addr: string, ttl: number, hits: number[]): RecentEntry => ({ kind: 'recent', addr, family: addr.includes(':') ? 6 : 4, ttl, hits });
/** A fixed conversion for the tests: this node booted at epoch 1_000_000 ms with jiffies 4294892296, HZ 250. */
const toJiffies = (ms: number): number => 4294892296 + ((ms - 1_000_000) * 250) / 1000;

const ref = (family: NftRef['family'], table: string, set: string): NftRef => ({ kind: 'nft', family, table, set });

describe('control replies', () => {
  describe('v1.0.0 texts, byte for byte (spec 3.4)', () => {
    it('start and stop recent', () => {
      assert.deepEqual(startRecentReply('started'), { text: '', status: 0 });
      assert.deepEqual(startRecentReply('already-running'), { text: 'recent sync service is already running', status: 0 });
      assert.deepEqual(stopRecentReply('stopped'), { text: 'stopping recent sync service\n', status: 0 });
      assert.deepEqual(stopRecentReply('not-running'), { text: 'recent sync service not running\n', status: 1 });
    });

    it('start http: the listener text then the farm text, with no separator', () => {
      assert.deepEqual(startHttpReply({ listener: 'started', farm: 'added' }), { text: 'starting http sync service\nhttp farm added', status: 0 });
      assert.deepEqual(startHttpReply({ listener: 'running', farm: 'added' }), { text: 'http farm added', status: 0 });
      assert.deepEqual(startHttpReply({ listener: 'started', farm: 'failed' }), { text: 'starting http sync service\nerror adding http farm listener', status: 1 });
      assert.deepEqual(startHttpReply({ listener: 'running', farm: 'failed' }), { text: 'error adding http farm listener', status: 1 });
      assert.deepEqual(startHttpReply({ listener: 'failed' }), { text: 'error starting http sync service', status: 1 });
    });

    it('stop http', () => {
      assert.deepEqual(stopHttpReply('removed'), { text: 'http farm removed', status: 0 });
      assert.deepEqual(stopHttpReply('not-running'), { text: 'http sync service not running\n', status: 1 });
    });

    it('clear http and clear recent are silent', () => {
      assert.deepEqual(clearReply(), { text: '', status: 0 });
    });

    it('write recent: `writing data` glued to the result, typo included', () => {
      assert.deepEqual(writeRecentReply(true), { text: 'writing datarecent data written correclty', status: 0 });
      assert.deepEqual(writeRecentReply(false), { text: 'writing dataerror writing recent data', status: 1 });
    });

    it('write http, write recent table, clear recent table', () => {
      assert.deepEqual(writeHttpReply(true), { text: 'http session data written correclty', status: 0 });
      assert.deepEqual(writeHttpReply(false), { text: 'error writing http session data', status: 1 });
      assert.deepEqual(writeRecentTableReply('written'), { text: 'table written correclty', status: 0 });
      assert.deepEqual(writeRecentTableReply('missing'), { text: "table doesn't exist", status: 1 });
      assert.deepEqual(writeRecentTableReply('failed'), { text: 'error writing table', status: 1 });
      assert.deepEqual(clearRecentTableReply('cleared'), { text: 'table cleared correclty', status: 0 });
      assert.deepEqual(clearRecentTableReply('missing'), { text: "table doesn't exist", status: 1 });
      assert.deepEqual(clearRecentTableReply('failed'), { text: 'error clearing table', status: 1 });
    });

    it('show mode is exactly master or backup, without a newline', () => {
      assert.deepEqual(showModeReply('master'), { text: 'master', status: 0 });
      assert.deepEqual(showModeReply('backup'), { text: 'backup', status: 0 });
      assert.deepEqual(showModeReply(undefined), { text: 'error', status: 1 });
    });

    it('quit is silent; an unknown id and a bad frame have their texts', () => {
      assert.deepEqual(quitReply(), { text: '', status: 0 });
      assert.deepEqual(unknownCommandReply(), { text: 'Command no found\n', status: 1 });
      assert.deepEqual(commandErrorReply(), { text: 'Command error', status: 1 });
    });

    it('the constants', () => {
      assert.deepEqual(TEXT, {
        recentAlreadyRunning: 'recent sync service is already running',
        stoppingRecent: 'stopping recent sync service\n',
        recentNotRunning: 'recent sync service not running\n',
        startingHttp: 'starting http sync service\n',
        errorStartingHttp: 'error starting http sync service',
        httpFarmAdded: 'http farm added',
        errorAddingHttpFarm: 'error adding http farm listener',
        httpFarmRemoved: 'http farm removed',
        httpNotRunning: 'http sync service not running\n',
        writingData: 'writing data',
        recentWritten: 'recent data written correclty',
        errorWritingRecent: 'error writing recent data',
        httpWritten: 'http session data written correclty',
        errorWritingHttp: 'error writing http session data',
        tableWritten: 'table written correclty',
        tableMissing: "table doesn't exist",
        errorWritingTable: 'error writing table',
        tableCleared: 'table cleared correclty',
        errorClearingTable: 'error clearing table',
        modeError: 'error',
        commandNotFound: 'Command no found\n',
        commandError: 'Command error',
      });
    });
  });

  describe('show and count recent', () => {
    const tables = [
      { name: 'zeta', entries: [recent('10.0.0.1', 0, [1_004_000])] },
      {
        name: '_web_1_sessions',
        // Given out of order: addresses sort as strings (10 before 9), stamps ascending.
        entries: [recent('10.0.0.9', 64, [1_002_000, 1_001_000]), recent('10.0.0.10', 61, [1_000_000, 1_003_000, 1_001_000])],
      },
      { name: 'empty', entries: [] },
    ];

    it('prints `# <table>` and ` src: <ip>ttl: ... last seen: ... old packets: <n> <stamps>` in jiffies', () => {
      assert.equal(
        formatShowRecent(tables, toJiffies),
        '# _web_1_sessions\n' +
          ' src: 10.0.0.10ttl: 61 last seen: 4294893046 old packets: 3 4294892296 4294892546 4294893046\n' +
          ' src: 10.0.0.9ttl: 64 last seen: 4294892796 old packets: 2 4294892546 4294892796\n' +
          '# empty\n' +
          '# zeta\n' +
          ' src: 10.0.0.1ttl: 0 last seen: 4294893296 old packets: 1 4294893296\n',
      );
      assert.equal(formatShowRecent([], toJiffies), '');
      assert.deepEqual(showRecentReply(tables, toJiffies), { text: formatShowRecent(tables, toJiffies), status: 0 });
    });

    it('counts per table as `# <table>: <n>`', () => {
      assert.equal(formatCountRecent(tables), '# _web_1_sessions: 2\n# empty: 0\n# zeta: 1\n');
      assert.deepEqual(countRecentReply(tables), { text: '# _web_1_sessions: 2\n# empty: 0\n# zeta: 1\n', status: 0 });
    });

    it('JSON: tables, entries with epoch-ms and jiffies stamps; counts with a total', () => {
      assert.deepEqual(JSON.parse(showRecentReply(tables.slice(1, 2), toJiffies, true).text), {
        tables: [
          {
            name: '_web_1_sessions',
            entries: [
              { addr: '10.0.0.10', family: 4, ttl: 61, lastSeenMs: 1_003_000, hitsMs: [1_000_000, 1_001_000, 1_003_000], lastSeenJiffies: 4294893046, hitsJiffies: [4294892296, 4294892546, 4294893046] },
              { addr: '10.0.0.9', family: 4, ttl: 64, lastSeenMs: 1_002_000, hitsMs: [1_001_000, 1_002_000], lastSeenJiffies: 4294892796, hitsJiffies: [4294892546, 4294892796] },
            ],
          },
        ],
      });
      assert.equal(countRecentReply(tables, true).text, '{"tables":[{"name":"_web_1_sessions","count":2},{"name":"empty","count":0},{"name":"zeta","count":1}],"total":3}');
    });
  });

  describe('show and count http', () => {
    const farms: HttpFarmView[] = [
      {
        name: 'web',
        listeners: [
          { listener: 1, services: [{ service: 0, sessions: [] }] },
          {
            listener: 0,
            services: [
              { service: 2, sessions: [{ key: 'k2', backend: 0, lastAccess: 1700000001, content: '' }] },
              {
                service: 0,
                sessions: [
                  { key: 'zz', backend: 1, lastAccess: 1700000002, content: 'c2' },
                  { key: 'aa', backend: 0, lastAccess: 1700000000, content: 'c1' },
                ],
              },
            ],
          },
        ],
      },
      { name: 'api', listeners: [] },
    ];

    it('prints farms, listeners, services and sessions with the original tabs and spaces', () => {
      assert.equal(
        formatShowHttp(farms),
        'farm:  api\n' +
          'farm:  web\n' +
          '\thttp Listener: 0\n' +
          ' \t\tService: 0\n' +
          '\t\t\tSession: aa [ 1700000000 ] >> c1\n' +
          '\t\t\tSession: zz [ 1700000002 ] >> c2\n' +
          ' \t\tService: 2\n' +
          '\t\t\tSession: k2 [ 1700000001 ] >> \n' +
          '\thttp Listener: 1\n' +
          ' \t\tService: 0\n',
      );
      assert.equal(showHttpReply(farms).text, formatShowHttp(farms));
    });

    it('counts one line per (listener, service) under each farm', () => {
      assert.equal(formatCountHttp(farms), 'farm:  api\nfarm:  web\n2\n1\n0\n');
      assert.equal(countHttpReply(farms).text, 'farm:  api\nfarm:  web\n2\n1\n0\n');
    });

    it('JSON', () => {
      assert.deepEqual(JSON.parse(showHttpReply(farms.slice(1), true).text), { farms: [{ name: 'api', listeners: [] }] });
      assert.deepEqual(JSON.parse(showHttpReply([farms[0]!], true).text).farms[0].listeners[0].services[0], {
        service: 0,
        sessions: [
          { key: 'aa', backend: 0, lastAccess: 1700000000, content: 'c1' },
          { key: 'zz', backend: 1, lastAccess: 1700000002, content: 'c2' },
        ],
      });
      assert.deepEqual(JSON.parse(countHttpReply(farms, true).text), {
        farms: [
          { name: 'api', services: [], total: 0 },
          {
            name: 'web',
            services: [
              { listener: 0, service: 0, count: 2 },
              { listener: 0, service: 2, count: 1 },
              { listener: 1, service: 0, count: 0 },
            ],
            total: 3,
          },
        ],
        total: 3,
      });
    });
  });

  describe('show and count nft', () => {
    const now = 2_000_000;
    const el = (addr: string, data: NftEntry['data'], timeoutMs: number, expiresAt: number | null): NftEntry => ({ kind: 'nft', addr, family: addr.includes(':') ? 6 : 4, data, timeoutMs, expiresAt });
    const sets = [
      {
        ref: ref('inet', 'filter', 'sticky'),
        entries: [
          el('2001:db8::2', { type: 'addr_port', family: 6, addr: '2001:db8::80', port: 443 }, 0, null),
          el('10.0.0.2', { type: 'mark', mark: 0x10 }, 60000, now + 59000),
          el('10.0.0.1', null, 30000, now - 5),
        ],
      },
      { ref: ref('ip', 'nat', 'persist'), entries: [el('192.0.2.1', { type: 'addr_port', family: 4, addr: '10.1.1.1', port: 80 }, 1000, now + 1000)] },
    ];

    it('prints `# <family> <table> <set>` and per element its address, data, timeout and time left', () => {
      assert.equal(
        formatShowNft(sets, now),
        '# inet filter sticky\n' +
          ' src: 10.0.0.1 timeout: 30000ms expires: 0ms\n' +
          ' src: 10.0.0.2 data: mark 0x00000010 timeout: 60000ms expires: 59000ms\n' +
          ' src: 2001:db8::2 data: 2001:db8::80 . 443 timeout: default expires: never\n' +
          '# ip nat persist\n' +
          ' src: 192.0.2.1 data: 10.1.1.1 . 80 timeout: 1000ms expires: 1000ms\n',
      );
      assert.equal(showNftReply(sets, now).text, formatShowNft(sets, now));
    });

    it('counts per set', () => {
      assert.equal(formatCountNft(sets), '# inet filter sticky: 3\n# ip nat persist: 1\n');
      assert.deepEqual(JSON.parse(countNftReply(sets, true).text), {
        sets: [
          { family: 'inet', table: 'filter', set: 'sticky', count: 3 },
          { family: 'ip', table: 'nat', set: 'persist', count: 1 },
        ],
        total: 4,
      });
    });

    it('JSON elements carry data, timeout, expiry and time left', () => {
      const j = JSON.parse(showNftReply(sets, now, true).text);
      assert.deepEqual(j.sets[0].elements, [
        { addr: '10.0.0.1', family: 4, data: null, timeoutMs: 30000, expiresAt: now - 5, expiresInMs: 0 },
        { addr: '10.0.0.2', family: 4, data: { type: 'mark', mark: 16 }, timeoutMs: 60000, expiresAt: now + 59000, expiresInMs: 59000 },
        { addr: '2001:db8::2', family: 6, data: { type: 'addr_port', family: 6, addr: '2001:db8::80', port: 443 }, timeoutMs: 0, expiresAt: null, expiresInMs: null },
      ]);
      assert.deepEqual(Object.keys(j.sets[1]), ['family', 'table', 'set', 'elements']);
    });

    it('start, stop and write nft', () => {
      const r = ref('inet', 'filter', 'sticky');
      assert.deepEqual(startNftReply(r, 'added'), { text: 'nft set added', status: 0 });
      assert.deepEqual(startNftReply(r, 'already-added'), { text: 'nft set already added', status: 0 });
      assert.deepEqual(startNftReply(r, { failed: 'no such set' }), { text: 'error adding nft set inet filter sticky: no such set', status: 1 });
      assert.deepEqual(stopNftReply('removed'), { text: 'nft set removed', status: 0 });
      assert.deepEqual(stopNftReply('unknown-set'), { text: 'nft set not found', status: 1 });
      assert.deepEqual(writeNftReply({ ok: true }), { text: 'nft data written correctly', status: 0 });
      assert.deepEqual(writeNftReply({ ok: false, why: 'netlink: EPERM' }), { text: 'error writing nft data: netlink: EPERM', status: 1 });
    });
  });

  describe('fixed and new texts', () => {
    it('start http of a farm already added, stop http of an unknown farm', () => {
      assert.deepEqual(startHttpReply({ listener: 'running', farm: 'already-added' }), { text: 'http farm already added', status: 0 });
      assert.deepEqual(stopHttpReply('unknown-farm'), { text: 'http farm not found', status: 1 });
    });

    it('switch, refusals, peer refusal, JSON show mode', () => {
      assert.deepEqual(switchReply({ ok: true, mode: 'master', port: 9999 }), { text: 'switched to master, listening on port 9999', status: 0 });
      assert.deepEqual(switchReply({ ok: true, mode: 'backup', address: '10.0.0.1', port: 9999 }), { text: 'switched to backup of 10.0.0.1:9999', status: 0 });
      assert.deepEqual(switchReply({ ok: true, mode: 'backup', address: '2001:db8::1', port: 7777 }), { text: 'switched to backup of [2001:db8::1]:7777', status: 0 });
      assert.deepEqual(switchReply({ ok: false, why: 'port 80 in use' }), { text: 'error switching mode: port 80 in use', status: 1 });
      assert.deepEqual(refusedReply('write recent runs on a backup only'), { text: 'write recent runs on a backup only', status: 1 });
      assert.equal(peerRefusedText(65534), 'Permission denied: uid 65534 may not control ssyncd');
      assert.deepEqual(showModeReply('backup', true), { text: '{"mode":"backup"}', status: 0 });
      assert.deepEqual(showModeReply(undefined, true), { text: '{"mode":null}', status: 1 });
    });
  });

  describe('status', () => {
    const view: StatusView = {
      mode: 'master',
      pid: 4242,
      startedAt: Date.UTC(2025, 0, 2, 3, 4, 5),
      endpoint: { address: '0.0.0.0', port: 7777 },
      sources: { recent: true, http: ['web', 'api'], nft: [ref('inet', 'filter', 'sticky')] },
      store: { tables: 3, entries: 120 },
      queueDepth: 5,
      lastSnapshot: { at: Date.UTC(2025, 0, 2, 4, 3, 53), peer: '10.0.0.2:41000', tables: 3, entries: 120 },
      peers: [
        { peer: '10.0.0.3:41001', state: 'connecting', since: Date.UTC(2025, 0, 2, 4, 4, 0), lagMs: null, queueDepth: 0 },
        { peer: '10.0.0.2:41000', state: 'connected', since: Date.UTC(2025, 0, 2, 4, 2, 5), lagMs: 15, queueDepth: 2 },
      ],
    };
    const now = Date.UTC(2025, 0, 2, 4, 4, 5);

    it('prints one fact per line, peers sorted, without a final newline', () => {
      assert.equal(
        formatStatus(view, now),
        [
          'mode: master',
          'pid: 4242',
          'started: 2025-01-02T03:04:05.000Z (up 3600 s)',
          'listening: 0.0.0.0:7777',
          'sources: recent, http api, http web, nft inet filter sticky',
          'store: 3 tables, 120 entries',
          'queue: 5',
          'last snapshot: 2025-01-02T04:03:53.000Z (12 s ago) to 10.0.0.2:41000, 3 tables, 120 entries',
          'peers: 2',
          '  10.0.0.2:41000 connected since 2025-01-02T04:02:05.000Z (120 s), lag 15 ms, queue 2',
          '  10.0.0.3:41001 connecting since 2025-01-02T04:04:00.000Z (5 s), lag unknown, queue 0',
        ].join('\n'),
      );
    });

    it('a backup names its master and where its snapshot came from; nothing replicated reads `none`', () => {
      const b: StatusView = { ...view, mode: 'backup', endpoint: { address: '2001:db8::1', port: 7777 }, sources: { recent: false, http: [], nft: [] }, lastSnapshot: null, peers: [] };
      const lines = formatStatus(b, now).split('\n');
      assert.equal(lines[3], 'master: [2001:db8::1]:7777');
      assert.equal(lines[4], 'sources: none');
      assert.equal(lines[7], 'last snapshot: none');
      assert.equal(lines[8], 'peers: 0');
      assert.equal(lines.length, 9);
      assert.match(formatStatus({ ...b, lastSnapshot: view.lastSnapshot }, now), /last snapshot: .* from 10\.0\.0\.2:41000/);
    });

    it('JSON has a fixed shape with epoch-ms times', () => {
      assert.deepEqual(JSON.parse(statusReply(view, now, true).text), {
        mode: 'master',
        pid: 4242,
        startedAt: view.startedAt,
        uptimeMs: 3_600_000,
        endpoint: { address: '0.0.0.0', port: 7777 },
        sources: { recent: true, http: ['api', 'web'], nft: [{ family: 'inet', table: 'filter', set: 'sticky' }], overrides: false },
        store: { tables: 3, entries: 120 },
        queueDepth: 5,
        lastSnapshot: { at: view.lastSnapshot!.at, peer: '10.0.0.2:41000', tables: 3, entries: 120 },
        peers: [
          { peer: '10.0.0.2:41000', state: 'connected', since: view.peers[1]!.since, lagMs: 15, queueDepth: 2 },
          { peer: '10.0.0.3:41001', state: 'connecting', since: view.peers[0]!.since, lagMs: null, queueDepth: 0 },
        ],
      });
      assert.deepEqual(statusReply(view, now), { text: formatStatus(view, now), status: 0 });
    });
  });
});
