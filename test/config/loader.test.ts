import { strict as assert } from 'node:assert';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatIssue, loadServiceConfig, parseServiceConfig, type LoadResult } from '../../surealived/config/xml.js';
import { TesterRegistry } from '../../testers/registry.js';

const registry = TesterRegistry.withBuiltins();
const parse = (text: string, canExecute: (p: string) => string | undefined = () => undefined): Promise<LoadResult> =>
  parseServiceConfig(text, 'conf.xml', { registry, canExecute });
const errorsOf = (r: LoadResult): string[] => r.issues.filter((i) => i.severity === 'error').map(formatIssue);
const warningsOf = (r: LoadResult): string[] => r.issues.filter((i) => i.severity === 'warning').map(formatIssue);

const TCP = 'proto="tcp" testport="80" loopdelay="1" timeout="2" retries2ok="1" retries2fail="1"';

describe('config: loading files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sd-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('a path that is a directory gives one error naming the file and the OS reason', async () => {
    const r = await loadServiceConfig(dir, { registry });
    assert.equal(r.config, undefined);
    assert.equal(r.issues.length, 1);
    assert.equal(formatIssue(r.issues[0]!), `${dir}: error: cannot read the file: illegal operation on a directory (EISDIR)`);
  });

  it('a dangling symlink gives one error: no such file or directory', async () => {
    const link = join(dir, 'conf.xml');
    symlinkSync(join(dir, 'gone.xml'), link);
    const r = await loadServiceConfig(link, { registry });
    assert.equal(r.config, undefined);
    assert.deepEqual(r.issues.map((i) => [i.file, i.line, i.severity]), [[link, 0, 'error']]);
    assert.match(r.issues[0]!.message, /no such file or directory \(ENOENT\)/);
  });

  it('an empty file is refused at line 1', async () => {
    const file = join(dir, 'empty.xml');
    writeFileSync(file, '');
    const r = await loadServiceConfig(file, { registry });
    assert.equal(r.config, undefined);
    assert.deepEqual(r.issues.map((i) => [i.line, i.severity, i.message]), [[1, 'error', 'empty document: no root element']]);
  });

  it('a script (exec, notifier) that exists but is not executable is a warning, never an error', async () => {
    const script = join(dir, 'check.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n');
    chmodSync(script, 0o644);
    const file = join(dir, 'conf.xml');
    const xml = (mode: string): string => `<surealived>
  <virtual name="v" addr="192.0.2.1" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester proto="exec" testport="80" exec="${script}" loopdelay="1" timeout="2" retries2ok="1" retries2fail="1"
            notify_up="${script}"/>
    <real name="r" addr="198.51.100.1" port="80" weight="1"/>
  </virtual>
</surealived><!-- ${mode} -->`;
    writeFileSync(file, xml('not executable'));
    const r1 = await loadServiceConfig(file, { registry });
    assert.ok(r1.config, errorsOf(r1).join('\n'));
    assert.deepEqual(r1.issues.map((i) => [i.severity, i.line, i.attr]), [['warning', 3, 'exec'], ['warning', 4, 'notify_up']]);
    assert.match(r1.issues[0]!.message, /permission denied \(EACCES\)/);
    chmodSync(script, 0o755);
    const r2 = await loadServiceConfig(file, { registry });
    assert.ok(r2.config);
    assert.deepEqual(r2.issues, []);
  });
});

describe('config: structure and reporting', () => {
  it('collects every error of the file, each with its own line and attribute', async () => {
    const r = await parse(`<surealived>
  <virtual name="a" addr="192.0.2.300" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester ${TCP}/>
    <real name="r1" addr="198.51.100.1" port="80" weight="-1"/>
    <real name="r2" addr="198.51.100.2" port="99999" weight="1"/>
  </virtual>
  <virtual name="b" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="direct">
    <tester ${TCP.replace('retries2ok="1"', 'retries2ok="0"')}/>
  </virtual>
  <frontend/>
</surealived>`);
    assert.equal(r.config, undefined);
    assert.deepEqual(r.issues.filter((i) => i.severity === 'error').map((i) => [i.line, i.attr]), [
      [2, 'addr'], [4, 'weight'], [5, 'port'], [7, 'rt'], [8, 'retries2ok'], [10, undefined],
    ]);
  });

  it('formats issues as file:line: severity: context: message', async () => {
    const r = await parse(`<surealived>
  <virtual name="wp" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester ${TCP}/>
    <real name="sg" addr="198.51.100.1" port="70000" weight="1"/>
  </virtual>
</surealived>`);
    assert.deepEqual(errorsOf(r), ['conf.xml:4: error: virtual "wp": real "sg": attribute "port": "70000" is not a port (0..65535)']);
    assert.equal(formatIssue({ file: 'x.xml', line: 0, severity: 'warning', message: 'm' }), 'x.xml: warning: m');
  });

  it('points at the line of the attribute, not of the element, when the element spans lines', async () => {
    const r = await parse(`<surealived>
  <virtual name="wp"
           addr="192.0.2.2"
           port="80"
           proto="tcp" sched="wrr"
           rt="dr">
    <tester ${TCP}
            testport_typo="1"/>
  </virtual>
</surealived>`);
    assert.ok(r.config);
    assert.deepEqual(warningsOf(r), ['conf.xml:8: warning: virtual "wp": tester: unknown attribute "testport_typo" ignored']);
  });

  it('an attribute value that looks like name= does not mislead the line finder', async () => {
    const r = await parse(`<surealived>
  <virtual name="wp" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester proto="http" url="/?weight=1" host="h"
            testport="80" loopdelay="1" timeout="2" retries2ok="1" retries2fail="1"/>
    <real name="sg" url="/a?weight=3"
          addr="198.51.100.1" port="80"
          weight="x"/>
  </virtual>
</surealived>`);
    assert.deepEqual(r.issues.filter((i) => i.severity === 'error').map((i) => [i.line, i.attr]), [[7, 'weight']]);
  });

  it('element and attribute names are case-sensitive; a case slip gets a hint', async () => {
    const r = await parse(`<surealived>
  <virtual name="v" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester ${TCP} Timeout="9"/>
    <Real name="sg" addr="198.51.100.1" port="80" weight="1"/>
  </virtual>
</surealived>`);
    assert.deepEqual(errorsOf(r), ['conf.xml:4: error: virtual "v": Unknown tag inside virtual: (Real)']);
    assert.deepEqual(warningsOf(r), ['conf.xml:3: warning: virtual "v": tester: unknown attribute "Timeout" ignored: did you mean "timeout"? (names are case-sensitive)']);
  });

  it('a tester attribute on a real is not an override: warning saying so', async () => {
    const r = await parse(`<surealived>
  <virtual name="v" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester ${TCP}/>
    <real name="sg" addr="198.51.100.1" port="80" weight="1" timeout="10"/>
  </virtual>
</surealived>`);
    assert.ok(r.config);
    assert.deepEqual(warningsOf(r), ['conf.xml:4: warning: virtual "v": real "sg": unknown attribute "timeout" ignored: a <tester> attribute that cannot be set per real']);
  });

  it('keeps the original\'s lenient corners as warnings: an invalid SSL value is false, words in flags', async () => {
    const r = await parse(`<surealived>
  <virtual name="v" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester ${TCP} SSL="yes" remove_on_fail="true" stats_samples="50"/>
  </virtual>
</surealived>`);
    assert.ok(r.config);
    const t = r.config.virtuals[0]!.tester;
    assert.equal(t.ssl, false);
    assert.equal(t.removeOnFail, true);
    assert.equal(t.statsSamples, 20);
    assert.deepEqual(r.issues.map((i) => [i.severity, i.attr]), [['warning', 'remove_on_fail'], ['warning', 'stats_samples'], ['warning', 'SSL']]);
  });

  it('decimal seconds are accepted for loopdelay and timeout (an extension); retries stay integers', async () => {
    const ok = await parse(`<virtual name="v" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr">
  <tester proto="tcp" testport="80" loopdelay="0.5" timeout=".25" retries2ok="1" retries2fail="1"/>
</virtual>`);
    assert.ok(ok.config);
    assert.equal(ok.config.virtuals[0]!.tester.loopdelay, 0.5);
    assert.equal(ok.config.virtuals[0]!.tester.timeout, 0.25);
    const bad = await parse(`<virtual name="v" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr">
  <tester proto="tcp" testport="80" loopdelay="1" timeout="1" retries2ok="1.5" retries2fail="1"/>
</virtual>`);
    assert.deepEqual(errorsOf(bad), ['conf.xml:2: error: virtual "v": tester: attribute "retries2ok": "1.5" is not an integer']);
  });

  it('ops on a tcp virtual is a warning (ipvssync only honours it for udp)', async () => {
    const r = await parse(`<virtual name="v" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr" ops="1">
  <tester ${TCP}/>
</virtual>`);
    assert.ok(r.config);
    assert.deepEqual(r.issues.map((i) => [i.severity, i.line, i.attr]), [['warning', 1, 'ops']]);
  });

  it('reals are still checked when their virtual\'s tester cannot be had', async () => {
    const r = await parse(`<surealived>
  <virtual name="a" addr="192.0.2.1" port="21" proto="tcp" sched="wrr" rt="dr">
    <tester proto="lua" testport="21" script="/x.lua"/>
    <real name="ftp1" addr="192.0.2.300" port="21" weight="1"/>
  </virtual>
  <virtual name="b" addr="192.0.2.2" port="21" proto="tcp" sched="wrr" rt="dr">
    <real name="ftp2" addr="198.51.100.1" port="21" weight="-1"/>
  </virtual>
</surealived>`);
    assert.deepEqual(errorsOf(r), [
      'conf.xml:3: error: virtual "a": tester: attribute "proto": Tester lua not registered',
      'conf.xml:4: error: virtual "a": real "ftp1": attribute "addr": "192.0.2.300": not an IPv4 address (only the dotted quad a.b.c.d without leading zeros is accepted)',
      'conf.xml:6: error: virtual "b": No tester tag inside virtual!',
      'conf.xml:7: error: virtual "b": Unknown tag inside virtual: (real): the <tester> must be the first element',
      'conf.xml:7: error: virtual "b": real "ftp2": attribute "weight": "-1" is not a weight (0..65535)',
    ]);
    assert.deepEqual(warningsOf(r), [], 'no "unknown attribute" guesses without a tester');
  });

  it('no-test ignores a module attribute like every other one', async () => {
    const r = await parse(`<virtual name="v" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr">
  <tester proto="No-Test" module="./does-not-exist.js"/>
  <real name="r" addr="198.51.100.1" port="80" weight="1"/>
</virtual>`);
    assert.deepEqual(r.issues, []);
    assert.equal(r.config?.virtuals[0]!.tester.proto, 'no-test', 'no-test is matched case-insensitively');
  });

  it('XML details: character references decoded, attribute values normalised, undefined entities refused', async () => {
    const r = await parse(`<virtual name="v&#x41;&#66;" addr="192.0.2.2" port="80" proto="tcp" sched="wrr" rt="dr">
  <tester proto="exec" testport="80" exec="/bin/true" params="a&amp;b &quot;c&quot;&#9;&lt;
d" loopdelay="1" timeout="2" retries2ok="1" retries2fail="1"/>
</virtual>`);
    assert.ok(r.config, errorsOf(r).join('\n'));
    assert.equal(r.config.virtuals[0]!.name, 'vAB');
    assert.equal(r.config.virtuals[0]!.tester.values['params'], 'a&b "c"\t< d');
  });

  it('the same real name in two different virtuals is fine', async () => {
    const r = await parse(`<surealived>
  <virtual name="a" addr="192.0.2.1" port="80" proto="tcp" sched="wrr" rt="dr"><tester ${TCP}/><real name="sg" addr="198.51.100.1" port="80" weight="1"/></virtual>
  <virtual name="b" addr="192.0.2.1" port="80" proto="udp" sched="wrr" rt="dr"><tester ${TCP}/><real name="sg" addr="198.51.100.1" port="80" weight="1"/></virtual>
</surealived>`);
    assert.deepEqual(errorsOf(r), []);
    assert.equal(r.config?.virtuals.length, 2);
  });
});
