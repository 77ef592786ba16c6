import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadServiceConfig, type LoadResult } from '../../surealived/config/xml.js';
import type { VirtualConfig } from '../../surealived/config/model.js';
import { TesterRegistry } from '../../testers/registry.js';
import { fixture } from './fixtures.js';

// Copies of the example configurations shipped with SureAliveD (spec §3.7).
const DIR = fixture('compat/');
const LUA = ['rtsp.xml', 'sunsite-lua.xml'];
const registry = TesterRegistry.withBuiltins();
const scriptsMissing = (): string => 'no such file or directory (ENOENT)';

async function load(name: string, canExecute?: (p: string) => string | undefined): Promise<LoadResult> {
  return loadServiceConfig(join(DIR, name), { registry, ...(canExecute ? { canExecute } : {}) });
}

function virtual(r: LoadResult, name: string): VirtualConfig {
  const v = r.config?.virtuals.find((x) => x.name === name);
  assert.ok(v, `virtual ${name} loaded`);
  return v;
}

describe('config: the example files shipped with SureAliveD (compat corpus)', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.xml')).sort();

  it('the corpus is all there (12 examples)', () => {
    assert.equal(files.length, 12);
  });

  for (const f of files.filter((x) => !LUA.includes(x))) {
    it(`${f} loads without error; its only warnings are about scripts missing on this host`, async () => {
      const r = await load(f);
      const errors = r.issues.filter((i) => i.severity === 'error');
      assert.deepEqual(errors, []);
      assert.ok(r.config, 'config present');
      assert.ok(r.config.virtuals.length >= 1);
      for (const w of r.issues) assert.match(w.message, /is not executable here/, `unexpected warning: ${w.message}`);
      for (const v of r.config.virtuals) for (const real of v.reals) assert.ok(real.probeKey.length > 0);
    });
  }

  for (const f of LUA) {
    it(`${f} is refused: "Tester lua not registered" on the line of proto="lua"`, async () => {
      const r = await load(f);
      assert.equal(r.config, undefined);
      const lines = readFileSync(join(DIR, f), 'utf8').split('\n');
      const protoLine = lines.findIndex((l) => l.includes('proto="lua"')) + 1;
      const e = r.issues.find((i) => i.severity === 'error' && i.message.includes('Tester lua not registered'));
      assert.ok(e, JSON.stringify(r.issues));
      assert.equal(e.line, protoLine);
      assert.equal(e.attr, 'proto');
    });
  }

  it('onetwp.xml: http testers as written, debugcomm on onet, remove_on_fail on wp', async () => {
    const r = await load('onetwp.xml');
    const onet = virtual(r, 'onet');
    const wp = virtual(r, 'wp');
    assert.deepEqual(
      [onet.addr, onet.port, onet.proto, onet.sched, onet.rt, onet.family],
      ['192.168.0.1', 80, 'tcp', 'wrr', 'dr', 4],
    );
    assert.equal(onet.tester.proto, 'http');
    assert.equal(onet.tester.loopdelay, 1);
    assert.equal(onet.tester.timeout, 2);
    assert.equal(onet.tester.retries2ok, 1);
    assert.equal(onet.tester.retries2fail, 1);
    assert.equal(onet.tester.debugcomm, true);
    assert.equal(onet.tester.removeOnFail, false);
    assert.equal(wp.tester.debugcomm, false);
    assert.equal(wp.tester.removeOnFail, true);
    assert.equal(onet.tester.values['url'], '/');
    assert.equal(onet.tester.values['host'], 'www.onet.pl');
    assert.equal(wp.reals[0]!.values['host'], 'www.wp.pl');
    assert.equal(wp.reals[0]!.weight, 11);
  });

  it('onetwp2.xml: the per-real rt="masq" overrides the virtual\'s dr', async () => {
    const r = await load('onetwp2.xml');
    assert.equal(virtual(r, 'onet').reals[0]!.rt, 'dr');
    const sg = virtual(r, 'wp').reals[0]!;
    assert.equal(sg.rt, 'masq');
    assert.equal(sg.port, 81);
    assert.equal(sg.testport, 80, 'the tester\'s testport, not the real\'s port');
  });

  it('onetwpssl.xml: SSL="1" reaches the tester settings; retcode 302 on the second virtual', async () => {
    const r = await load('onetwpssl.xml');
    assert.equal(virtual(r, 'onet').tester.ssl, true);
    assert.equal(virtual(r, 'wp').tester.values['retcode'], '302');
    assert.equal(virtual(r, 'onet').tester.values['retcode'], '200', 'http default retcode');
    assert.equal(virtual(r, 'wp').reals[0]!.rt, 'masq');
  });

  it('onetwp-notest.xml: no-test ignores every other tester attribute and uses the documented defaults', async () => {
    const r = await load('onetwp-notest.xml');
    assert.deepEqual(r.issues, [], 'no warnings either: the attributes are silently ignored, as in the original');
    const t = virtual(r, 'onet').tester;
    assert.equal(t.proto, 'no-test');
    assert.deepEqual([t.testport, t.loopdelay, t.timeout, t.retries2ok, t.retries2fail, t.statsSamples], [0, 3, 5, 1, 1, 20]);
  });

  it('onetdns-ops.xml: udp virtuals, dns request, ops on the first only', async () => {
    const r = await load('onetdns-ops.xml');
    const a = virtual(r, 'onetdns1');
    assert.equal(a.proto, 'udp');
    assert.equal(a.ops, true);
    assert.equal(virtual(r, 'onetdns2').ops, false);
    assert.equal(a.tester.values['request'], 'onet.pl');
    assert.equal(a.reals.length, 2);
  });

  it('onetdnsmicro.xml: logmicro="1" and logmicro="0"', async () => {
    const r = await load('onetdnsmicro.xml');
    assert.equal(virtual(r, 'onetdns1').tester.logmicro, true);
    assert.equal(virtual(r, 'onetdns2').tester.logmicro, false);
  });

  it('onet-notify.xml: notifier scripts, thresholds absolute and percent, stats_samples', async () => {
    const r = await load('onet-notify.xml', () => undefined);
    const onet = virtual(r, 'onet').tester;
    assert.equal(onet.notifyUp, '/usr/lib/surealived/scripts/test_up.sh');
    assert.equal(onet.notifyDown, '/usr/lib/surealived/scripts/test_down.sh');
    assert.deepEqual(onet.notifyMinReals, { value: 4, percent: false });
    assert.deepEqual(onet.notifyMinWeight, { value: 50, percent: true });
    assert.equal(onet.statsSamples, 10);
    const onet2 = virtual(r, 'onet2').tester;
    assert.deepEqual(onet2.notifyMinReals, { value: 75, percent: true });
    assert.deepEqual(onet2.notifyMinWeight, { value: 0, percent: false });
  });

  it('onet-notify-real.xml: real notifier scripts; a missing script is a warning on its attribute line', async () => {
    const r = await load('onet-notify-real.xml', scriptsMissing);
    assert.ok(r.config);
    const t = virtual(r, 'onet').tester;
    assert.equal(t.realNotifyUp, '/usr/lib/surealived/scripts/test_real_up.sh');
    assert.equal(t.realNotifyDown, '/usr/lib/surealived/scripts/test_real_down.sh');
    assert.deepEqual(r.issues.map((i) => [i.severity, i.line, i.attr]), [['warning', 6, 'real_notify_up'], ['warning', 7, 'real_notify_down']]);
  });

  it('onet-exec.xml: exec path and params reach the values; the missing script is only a warning', async () => {
    const r = await load('onet-exec.xml', scriptsMissing);
    assert.ok(r.config);
    const v = virtual(r, 'onetexec');
    assert.equal(v.tester.proto, 'exec');
    assert.equal(v.tester.values['exec'], '/usr/lib/surealived/scripts/testexec.pl');
    assert.equal(v.tester.values['params'], 'www.onet.pl /0');
    assert.equal(v.tester.timeout, 5);
    assert.equal(r.issues.length, 1);
    const w = r.issues[0]!;
    assert.equal(w.severity, 'warning');
    assert.equal(w.line, 5);
    assert.equal(w.attr, 'exec');
    assert.match(w.message, /testexec\.pl" is not executable here: no such file or directory/);
  });
});
