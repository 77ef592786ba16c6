// Behaviour of override.dump and the rset override rules: exact bytes, parsing, apply, entry deletion.

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { effectiveWeight, type RealState } from '../../surealived/engine/state.js';
import {
  applyRset,
  atoi,
  formatOverrideDump,
  formatOverrideLine,
  formatRsetReply,
  hasOverrideEntry,
  loadOverrideDump,
  parseOverrideDump,
  saveOverrideDump,
} from '../../surealived/state/override-dump.js';
import { findReal, memLogger, sampleState, state, real, tempDir } from './fixtures.js';

/** What the control port does with an rset result. */
function rset(r: RealState, req: { rstate?: string; rweight?: string }) {
  const res = applyRset(r, req);
  if (res.ok) {
    r.rstate = res.rstate;
    r.override = res.override;
  }
  return res;
}

describe('state/override-dump (spec 7.2, 9.3)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  it('writes absolute overrides with two spaces before rstate and percent ones with `%`', () => {
    const vs = sampleState();
    const w1 = findReal(vs, 'web', 'w1');
    w1.rstate = 'OFFLINE';
    assert.equal(formatOverrideLine(w1), '10.0.0.1:80:0:0 - 10.0.1.5:80 - weight=20  rstate=OFFLINE\n');
    w1.rstate = 'ONLINE';
    w1.override = { weight: 50, percent: true };
    assert.equal(formatOverrideLine(w1), '10.0.0.1:80:0:0 - 10.0.1.5:80 - weight=50% rstate=ONLINE\n');
  });

  it('pins the configured weight as absolute when only rstate was overridden (original behaviour)', () => {
    const vs = sampleState();
    const w2 = findReal(vs, 'web', 'w2');
    const res = rset(w2, { rstate: 'DOWN' });
    assert.deepEqual(res, { ok: true, rstate: 'DOWN', override: { weight: 30, percent: false }, deleteEntry: false });
    assert.equal(formatOverrideDump(vs), '10.0.0.1:80:0:0 - 10.0.1.6:80 - weight=30  rstate=DOWN\n');
  });

  it('prints the weight unsigned, and reads it back as a C int', () => {
    const vs = state({ name: 'neg', addr: '10.0.0.2', port: 80, reals: [real('n', '10.0.5.1', 80, -5)] });
    const n = vs[0]!.reals[0]!;
    n.rstate = 'OFFLINE';
    const text = formatOverrideDump(vs);
    assert.equal(text, '10.0.0.2:80:0:0 - 10.0.5.1:80 - weight=4294967291  rstate=OFFLINE\n');
    const { entries } = parseOverrideDump(text, vs, 'o');
    assert.deepEqual(entries[0]!.override, { weight: -5, percent: false });
  });

  it('parses entries, tolerating the original scanf whitespace, and warns about bad lines', () => {
    const vs = sampleState();
    const text = [
      '10.0.0.1:80:0:0 - 10.0.1.5:80 - weight=20  rstate=OFFLINE',
      '10.0.0.1:80:0:0 - 10.0.1.6:80 - weight=50% rstate=ONLINE',
      '0.0.0.0:0:2:7 - 10.0.3.1:80 - weight=3 rstate=DOWN',
      '10.0.0.1:80:0:0 - 10.0.1.5:80 - weight=20  rstate=SIDEWAYS',
      '10.0.0.1:80:0:0 - 10.0.1.7:80 - weight=20  rstate=OFFLINE',
      '10.0.0.1:80:0:0 - 10.0.1.5:80 - weight=-3  rstate=OFFLINE',
      '[2001:db8::1]:80:0:0 - [2001:db8::10]:8080 - weight=7  rstate=OFFLINE',
    ].join('\n');
    const { entries, warnings } = parseOverrideDump(text, vs, 'override.dump');
    assert.deepEqual(
      entries.map((e) => [e.real.config.name, e.override.weight, e.override.percent, e.rstate]),
      [
        ['w1', 20, false, 'OFFLINE'],
        ['w2', 50, true, 'ONLINE'],
        ['f1', 3, false, 'DOWN'],
        ['s1', 7, false, 'OFFLINE'],
      ],
    );
    assert.deepEqual(warnings.map((w) => w.line), [4, 5, 6]);
    assert.match(warnings[0]!.reason, /unknown rstate 'SIDEWAYS'/);
    assert.match(warnings[1]!.reason, /no such real/);
  });

  it('round-trips through the file and applies override and rstate at start-up', async () => {
    const path = join(tmp.dir, 'override.dump');
    const a = sampleState();
    rset(findReal(a, 'web', 'w1'), { rstate: 'OFFLINE', rweight: '20' });
    rset(findReal(a, 'web', 'w2'), { rweight: '50%' });
    rset(findReal(a, 'fw', 'f1'), { rstate: 'DOWN' });
    await saveOverrideDump(path, a, memLogger().log);
    const written = readFileSync(path, 'utf8');
    assert.equal(
      written,
      '10.0.0.1:80:0:0 - 10.0.1.5:80 - weight=20  rstate=OFFLINE\n' +
        '10.0.0.1:80:0:0 - 10.0.1.6:80 - weight=50% rstate=ONLINE\n' +
        '0.0.0.0:0:2:7 - 10.0.3.1:80 - weight=1  rstate=DOWN\n',
    );
    const b = sampleState();
    await loadOverrideDump(path, b, memLogger().log);
    assert.equal(formatOverrideDump(b), written);
    assert.equal(effectiveWeight(findReal(b, 'web', 'w2')), 15);
    assert.equal(findReal(b, 'fw', 'f1').rstate, 'DOWN');
    assert.equal(readFileSync(path, 'utf8'), written, 'rewritten after merging');
  });

  it('drops lines of reals missing from the XML at start-up, with a warning', async () => {
    const path = join(tmp.dir, 'override.dump');
    writeFileSync(path, '10.0.0.1:80:0:0 - 10.0.1.99:80 - weight=20  rstate=OFFLINE\n10.0.0.1:80:0:0 - 10.0.1.5:80 - weight=9  rstate=ONLINE\n');
    const { log, lines } = memLogger();
    await loadOverrideDump(path, sampleState(), log);
    assert.equal(readFileSync(path, 'utf8'), '10.0.0.1:80:0:0 - 10.0.1.5:80 - weight=9  rstate=ONLINE\n');
    assert.ok(lines.some((l) => l.includes('override.dump:1: no such real')));
  });

  describe('rset', () => {
    it('needs rstate or rweight, and an upper-case known rstate', () => {
      const r = findReal(sampleState(), 'web', 'w1');
      assert.deepEqual(applyRset(r, {}), { ok: false, error: "cmd_rset: you need to set at least 'rstate' or 'rweight'" });
      assert.deepEqual(applyRset(r, { rstate: 'online' }), { ok: false, error: 'cmd_rset: rstate unknown [online]' });
    });

    it('`N%` is a percent override, `N` absolute via atoi', () => {
      const r = findReal(sampleState(), 'web', 'w1');
      assert.deepEqual(applyRset(r, { rweight: '150%' }), { ok: true, rstate: 'ONLINE', override: { weight: 150, percent: true }, deleteEntry: false });
      assert.deepEqual(applyRset(r, { rweight: '7abc' }), { ok: true, rstate: 'ONLINE', override: { weight: 7, percent: false }, deleteEntry: false });
      assert.deepEqual(applyRset(r, { rweight: 'x' }), { ok: true, rstate: 'ONLINE', override: { weight: 0, percent: false }, deleteEntry: false });
    });

    it('keeps an existing override when only rstate changes', () => {
      const r = findReal(sampleState(), 'web', 'w1');
      rset(r, { rweight: '40%' });
      const res = rset(r, { rstate: 'OFFLINE' });
      assert.deepEqual(res.ok && res.override, { weight: 40, percent: true });
    });

    it('deletes the entry when back to ONLINE with the configured weight or exactly 100%', () => {
      const vs = sampleState();
      const r = findReal(vs, 'web', 'w1');
      rset(r, { rstate: 'OFFLINE', rweight: '5' });
      assert.ok(hasOverrideEntry(r));
      const back = rset(r, { rstate: 'ONLINE', rweight: '20' });
      assert.equal(back.ok && back.deleteEntry, true);
      assert.equal(hasOverrideEntry(r), false);
      rset(r, { rweight: '50%' });
      const pct = rset(r, { rweight: '100%' });
      assert.equal(pct.ok && pct.deleteEntry, true);
      assert.equal(formatOverrideDump(vs), '');
      const notOnline = rset(r, { rstate: 'OFFLINE', rweight: '100%' });
      assert.equal(notOnline.ok && notOnline.deleteEntry, false);
    });

    it('`rweight=-1` (the original no-override sentinel) resets to the configured weight', () => {
      const r = findReal(sampleState(), 'web', 'w1');
      rset(r, { rweight: '5' });
      assert.deepEqual(rset(r, { rweight: '-1' }), { ok: true, rstate: 'ONLINE', override: { weight: 20, percent: false }, deleteEntry: true });
    });

    it('deleteEntry always agrees with hasOverrideEntry after applying', () => {
      const r = findReal(sampleState(), 'web', 'w2');
      for (const req of [{ rweight: '30' }, { rstate: 'DOWN' }, { rweight: '100%' }, { rstate: 'ONLINE' }, { rweight: '0' }, { rweight: '30' }]) {
        const res = rset(r, req);
        assert.equal(res.ok && res.deleteEntry, !hasOverrideEntry(r), JSON.stringify(req));
      }
    });

    it('formats the reply line', () => {
      assert.equal(formatRsetReply({ rstate: 'OFFLINE', override: { weight: 50, percent: true } }), 'Set: rstate=OFFLINE, weight=50, inpercent=TRUE\n');
    });

    it('atoi behaves like C', () => {
      assert.equal(atoi(' 42x'), 42);
      assert.equal(atoi('-7'), -7);
      assert.equal(atoi('abc'), 0);
      assert.equal(atoi(''), 0);
    });
  });
});
