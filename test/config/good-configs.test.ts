import { strict as assert } from 'node:assert';
import { pathToFileURL } from 'node:url';
import { formatIssue, loadServiceConfig, type LoadResult } from '../../surealived/config/xml.js';
import type { RealConfig, VirtualConfig } from '../../surealived/config/model.js';
import { TesterRegistry } from '../../testers/registry.js';
import { fixture } from './fixtures.js';

const registry = TesterRegistry.withBuiltins();

async function load(name: string, modulesPath?: string): Promise<LoadResult> {
  const r = await loadServiceConfig(fixture(`good/${name}`), { registry, canExecute: () => undefined, ...(modulesPath ? { modulesPath } : {}) });
  assert.ok(r.config, `${name} loads:\n${r.issues.map(formatIssue).join('\n')}`);
  return r;
}

function virtual(r: LoadResult, name: string): VirtualConfig {
  const v = r.config?.virtuals.find((x) => x.name === name);
  assert.ok(v, `virtual ${name}`);
  return v;
}

function real(v: VirtualConfig, name: string): RealConfig {
  const x = v.reals.find((y) => y.name === name);
  assert.ok(x, `real ${name}`);
  return x;
}

describe('config: good configurations', () => {
  it('IPv6 virtual and reals are canonicalised (lower-case, compressed); a tun real may be IPv4', async () => {
    const r = await load('ipv6.xml');
    assert.deepEqual(r.issues, []);
    const web6 = virtual(r, 'web6');
    assert.deepEqual([web6.addr, web6.family, web6.port, web6.sched], ['2001:db8::10', 6, 443, 'wlc']);
    assert.deepEqual([real(web6, 'a').addr, real(web6, 'a').family], ['2001:db8:0:1::1', 6]);
    assert.equal(real(web6, 'b').addr, '2001:db8:1::2');
    assert.equal(real(web6, 'b').testport, 8443);
    assert.equal(real(web6, 'a').testport, 443);
    assert.deepEqual([real(web6, 'tun4').addr, real(web6, 'tun4').family, real(web6, 'tun4').rt], ['198.51.100.7', 4, 'tun']);
    assert.equal(web6.tester.timeout, 1.5);
    assert.equal(web6.tester.retries2fail, 3);
    const dns6 = virtual(r, 'dns6');
    assert.deepEqual([dns6.proto, dns6.rt], ['udp', 'dr'], 'proto and rt are case-insensitive');
    assert.equal(dns6.reals[0]!.addr, '2001:db8:53::1');
  });

  it('fwmark virtuals: no address of their own ("0.0.0.0" or "::" by their reals\' family), port 0', async () => {
    const r = await load('fwmark.xml');
    const m4 = virtual(r, 'mark4');
    assert.deepEqual([m4.proto, m4.fwmark, m4.addr, m4.family, m4.port, m4.pers], ['fwmark', 10, '0.0.0.0', 4, 0, 300]);
    const m6 = virtual(r, 'mark6');
    assert.deepEqual([m6.proto, m6.fwmark, m6.addr, m6.family, m6.port], ['fwmark', 11, '::', 6, 0]);
    const mt = virtual(r, 'marktcp');
    assert.deepEqual([mt.proto, mt.addr, mt.port], ['fwmark', '0.0.0.0', 0], 'proto="tcp" with a fwmark is taken as fwmark');
    assert.deepEqual(r.issues.map((i) => [i.severity, i.line, i.attr]), [['warning', 11, 'addr'], ['warning', 11, 'port'], ['warning', 11, 'proto']]);
    assert.match(r.issues.find((i) => i.attr === 'proto')!.message, /the original ipvssync would build a TCP 0\.0\.0\.0:0 service/);
  });

  it('per-real overrides: testport, rt, thresholds and the tester\'s own attributes, visible in values and params', async () => {
    const r = await load('overrides.xml');
    assert.deepEqual(r.issues, []);
    const v = virtual(r, 'web');
    const plain = real(v, 'plain');
    const custom = real(v, 'custom');
    const same = real(v, 'same');
    assert.deepEqual([plain.testport, plain.rt, plain.uthresh, plain.lthresh], [80, 'dr', 0, 0]);
    assert.deepEqual([custom.testport, custom.rt, custom.uthresh, custom.lthresh], [8080, 'masq', 1000, 100]);
    assert.equal(plain.values['url'], '/');
    assert.equal(plain.values['retcode'], '200');
    assert.equal(custom.values['url'], '/health');
    assert.equal(custom.values['retcode'], '204');
    assert.equal(custom.values['host'], 'www.example.com', 'not overridden: the tester\'s value');
    assert.equal(v.tester.values['url'], '/', 'the tester\'s own values are untouched');
    assert.notDeepEqual(custom.params, plain.params);
    assert.ok(JSON.stringify(custom.params).includes('/health'), 'the override reaches the compiled parameters');
    assert.equal(same.params, plain.params, 'identical values share one compiled parameter object');
    assert.equal(v.tester.ssl, false);
  });

  it('absent optional tester attributes: the documented defaults, one warning each; http naive defaults to false', async () => {
    const r = await load('defaults.xml');
    const t = virtual(r, 'web').tester;
    assert.deepEqual([t.loopdelay, t.timeout, t.retries2ok, t.retries2fail], [3, 5, 1, 1]);
    assert.deepEqual([t.removeOnFail, t.debugcomm, t.logmicro, t.statsSamples, t.ssl], [false, false, false, 20, false]);
    assert.deepEqual([t.notifyMinReals, t.notifyMinWeight], [{ value: 0, percent: false }, { value: 0, percent: false }]);
    assert.equal(t.values['naive'], false);
    assert.equal(t.values['retcode'], '200');
    const warnings = r.issues.map((i) => [i.severity, i.line, i.attr]);
    assert.deepEqual(warnings, [
      ['warning', 4, 'loopdelay'], ['warning', 4, 'timeout'], ['warning', 4, 'retries2ok'], ['warning', 4, 'retries2fail'],
      ['warning', 4, 'ssl'], ['warning', 5, 'colour'],
    ]);
    assert.match(r.issues[0]!.message, /attribute "loopdelay": absent: using the documented default 3 \(the original code used 0\)/);
    assert.match(r.issues[4]!.message, /did you mean "SSL"\?/);
  });

  it('a third-party tester loaded by path (relative to the XML file): attributes typed, defaults, per-real overrides, compile once per distinct set', async () => {
    const mod = (await import(pathToFileURL(fixture('third-party-tester.js')).href)) as { stats: { compiles: number } };
    const before = mod.stats.compiles;
    const r = await load('third-party.xml');
    assert.deepEqual(r.issues, []);
    const v = virtual(r, 'chat');
    assert.equal(v.tester.proto, 'echo');
    assert.equal(v.tester.tester.name, 'echo');
    const a = real(v, 'a');
    const b = real(v, 'b');
    const c = real(v, 'c');
    assert.deepEqual(a.values, { greeting: 'hi', expect: 'hello', count: 1 });
    assert.deepEqual(b.values, { greeting: 'hey', expect: 'hello', count: 3 });
    assert.deepEqual(a.params, { greeting: 'hi', expect: 'hello', count: 1, ssl: false, timeoutMs: 2000 });
    assert.deepEqual(b.params, { greeting: 'hey', expect: 'hello', count: 3, ssl: false, timeoutMs: 2000 });
    assert.equal(a.params, c.params);
    assert.equal(mod.stats.compiles - before, 2, 'two distinct attribute sets, two compiles');
  });

  it('a third-party tester found as <modules_path>/mod_<proto>.js', async () => {
    const r = await load('modules-path.xml', fixture('modules'));
    const v = virtual(r, 'chat2');
    assert.equal(v.tester.proto, 'echo2');
    assert.deepEqual(v.reals[0]!.params, { word: 'pong' });
    assert.deepEqual(v.tester.values, { word: 'ping' });
  });

  it('without modules_path the same file is refused: Tester echo2 not registered', async () => {
    const r = await loadServiceConfig(fixture('good/modules-path.xml'), { registry });
    assert.equal(r.config, undefined);
    assert.deepEqual(r.issues.map((i) => [i.line, i.attr]), [[4, 'proto']]);
    assert.match(r.issues[0]!.message, /Tester echo2 not registered/);
  });

  it('the same real tested the same way in two virtuals has one probeKey; other timing, other key', async () => {
    const r = await load('shared-probe.xml');
    const a = virtual(r, 'http').reals[0]!;
    const b = virtual(r, 'http-alt').reals[0]!;
    const c = virtual(r, 'http-slow').reals[0]!;
    assert.equal(a.probeKey, b.probeKey);
    assert.equal(a.params, b.params, 'and one compiled parameter object');
    assert.notEqual(a.probeKey, c.probeKey);
  });

  it('a bare <virtual> root; no-test ignores even invalid tester attributes; a virtual without reals', async () => {
    const r = await load('bare-virtual.xml');
    assert.deepEqual(r.issues, []);
    const v = virtual(r, 'solo');
    assert.deepEqual([v.rt, v.reals.length, v.tester.proto, v.tester.timeout], ['masq', 0, 'no-test', 5]);
    assert.equal(v.source.line, 2);
    assert.equal(v.tester.source.line, 3);
  });
});
