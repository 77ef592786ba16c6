// The fallbacks in the XML (extensions): `<virtual panic="N">` and the `<sorry>` element, with every
// bad value refused at its file:line.

import { strict as assert } from 'node:assert';
import { formatIssue, parseServiceConfig, type LoadResult } from '../../surealived/config/xml.js';
import { TesterRegistry } from '../../testers/registry.js';

const registry = TesterRegistry.withBuiltins();
const parse = (text: string, canExecute: (p: string) => string | undefined = () => undefined): Promise<LoadResult> =>
  parseServiceConfig(text, 'conf.xml', { registry, canExecute });
const errorsOf = (r: LoadResult): string[] => r.issues.filter((i) => i.severity === 'error').map(formatIssue);
const warningsOf = (r: LoadResult): string[] => r.issues.filter((i) => i.severity === 'warning').map(formatIssue);

const TESTER = '<tester proto="tcp" testport="80" loopdelay="1" timeout="2" retries2ok="1" retries2fail="1"/>';
/** A virtual whose lines are: 1 <surealived>, 2 <virtual>, 3 <tester>, 4.. `body` lines. */
const conf = (vattrs: string, body: string[]): string =>
  ['<surealived>', `<virtual name="web" addr="192.0.2.10" port="80" proto="tcp" sched="wrr" rt="dr"${vattrs}>`, TESTER, ...body, '</virtual>', '</surealived>', ''].join('\n');
const REALS = ['<real name="a" addr="10.0.0.1" port="80" weight="10"/>', '<real name="b" addr="10.0.0.2" port="80" weight="20"/>'];

describe('config: fallbacks (panic threshold, sorry server)', () => {
  describe('panic', () => {
    it('is off by default; "50", "50%", "12.5" and "0" are read as percentages', async () => {
      for (const [text, want] of [[undefined, undefined], ['50', 50], ['50%', 50], [' 12.5 % ', 12.5], ['100', 100], ['0', undefined]] as const) {
        const r = await parse(conf(text === undefined ? '' : ` panic="${text}"`, REALS));
        assert.deepEqual(errorsOf(r), []);
        assert.equal(r.config!.virtuals[0]!.panic, want, `panic="${text}"`);
      }
    });

    it('refuses values that are not a percentage 0..100, at the line of the attribute', async () => {
      for (const bad of ['101', '-1', 'half', '50%%', '', '1e2']) {
        const text = conf('', REALS).replace('rt="dr">', `rt="dr"\n  panic="${bad}">`);
        const r = await parse(text);
        assert.equal(r.config, undefined, bad);
        assert.equal(errorsOf(r).length, 1, `${bad}: ${errorsOf(r).join('; ')}`);
        assert.match(errorsOf(r)[0]!, /^conf\.xml:3: error: virtual "web": attribute "panic": .*(not a percentage|out of range)/, bad);
      }
    });

    it('warns on a virtual without reals (it never applies)', async () => {
      const r = await parse(conf(' panic="50"', []));
      assert.deepEqual(errorsOf(r), []);
      assert.match(warningsOf(r).join('\n'), /conf\.xml:2: warning: virtual "web": attribute "panic": the virtual has no reals/);
    });
  });

  describe('<sorry>', () => {
    it('is read with the <real> attribute names: rt defaults to the virtual\'s, thresholds to 0, inhibit off', async () => {
      const r = await parse(conf('', [...REALS, '<sorry name="sorry" addr="10.0.0.99" port="8080" weight="1"/>']));
      assert.deepEqual(errorsOf(r), []);
      assert.deepEqual(warningsOf(r), []);
      const v = r.config!.virtuals[0]!;
      assert.equal(v.reals.length, 2, 'the sorry server is not a real (never probed)');
      assert.deepEqual(v.sorry, { name: 'sorry', addr: '10.0.0.99', family: 4, port: 8080, weight: 1, uthresh: 0, lthresh: 0, rt: 'dr', inhibit: false, source: { file: 'conf.xml', line: 6 } });
    });

    it('takes rt, uthresh, lthresh, inhibit and notifiers; it may stand anywhere after the <tester>', async () => {
      const r = await parse(
        conf('', ['<sorry name="s" addr="10.0.0.99" port="80" weight="3" rt="masq" uthresh="100" lthresh="10" inhibit="1" notify_up="/bin/up" notify_down="/bin/down"/>', ...REALS]),
      );
      assert.deepEqual(errorsOf(r), []);
      const s = r.config!.virtuals[0]!.sorry!;
      assert.deepEqual([s.rt, s.uthresh, s.lthresh, s.inhibit, s.notifyUp, s.notifyDown], ['masq', 100, 10, true, '/bin/up', '/bin/down']);
      assert.equal(r.config!.virtuals[0]!.reals.length, 2);
    });

    it('is allowed in a virtual without reals, and in a bare <virtual> root', async () => {
      const r = await parse(conf('', ['<sorry name="s" addr="10.0.0.99" port="80" weight="1"/>']));
      assert.deepEqual(errorsOf(r), []);
      assert.equal(r.config!.virtuals[0]!.sorry!.name, 's');
      const bare = await parse(`<virtual name="v" addr="192.0.2.1" port="80" proto="tcp" sched="rr" rt="dr">${TESTER}<real name="a" addr="10.0.0.1" port="80" weight="1"/><sorry name="s" addr="10.0.0.2" port="80" weight="1"/></virtual>`);
      assert.deepEqual(errorsOf(bare), []);
      assert.equal(bare.config!.virtuals[0]!.sorry!.addr, '10.0.0.2');
    });

    it('must not be one of the virtual\'s reals: same addr:port or same name is an error at the sorry\'s line', async () => {
      const same = await parse(conf('', [...REALS, '<sorry name="s" addr="10.0.0.2" port="80" weight="1"/>']));
      assert.equal(same.config, undefined);
      assert.deepEqual(errorsOf(same), ['conf.xml:6: error: virtual "web": sorry "s": attribute "addr": 10.0.0.2:80 is also the real at line 5: a sorry server must not be one of the virtual\'s reals']);
      const name = await parse(conf('', [...REALS, '<sorry name="a" addr="10.0.0.9" port="80" weight="1"/>']));
      assert.deepEqual(errorsOf(name), ['conf.xml:6: error: virtual "web": sorry "a": attribute "name": the real at line 4 has the same name: a sorry server must not be one of the virtual\'s reals']);
      // Another port of a real's address is another destination; a real of another virtual is no concern.
      const other = await parse(conf('', [...REALS, '<sorry name="s" addr="10.0.0.2" port="81" weight="1"/>']));
      assert.deepEqual(errorsOf(other), []);
    });

    it('refuses bad values, a second <sorry>, a <sorry> before the <tester> and child elements, each at its line', async () => {
      const cases: Array<[string[], RegExp]> = [
        [['<sorry name="s" addr="10.0.0.9" port="80" weight="0"/>'], /^conf\.xml:4: error: virtual "web": sorry "s": attribute "weight": "0" is not a sorry server weight \(1\.\.65535\)$/],
        [['<sorry name="s" addr="10.0.0.9" port="80" weight="70000"/>'], /:4: error: .*"weight": "70000" is not a sorry server weight/],
        [['<sorry name="s" addr="10.0.0.300" port="80" weight="1"/>'], /:4: error: virtual "web": sorry "s": attribute "addr": "10\.0\.0\.300"/],
        [['<sorry name="s" addr="224.0.0.1" port="80" weight="1"/>'], /:4: error: .*sorry "s": attribute "addr": "224\.0\.0\.1"/],
        [['<sorry name="s" addr="10.0.0.9" port="99999" weight="1"/>'], /:4: error: .*sorry "s": attribute "port": "99999" is not a port/],
        [['<sorry name="s" addr="10.0.0.9" port="80" weight="1" rt="nat"/>'], /:4: error: .*sorry "s": attribute "rt": "nat" is not one of dr, masq, tun/],
        [['<sorry name="s" addr="10.0.0.9" port="80" weight="1" inhibit="maybe"/>'], /:4: error: .*sorry "s": attribute "inhibit": "maybe" is not a flag/],
        [['<sorry name="bad name" addr="10.0.0.9" port="80" weight="1"/>'], /:4: error: .*attribute "name": .*whitespace/],
        [['<sorry addr="10.0.0.9" port="80" weight="1"/>'], /:4: error: virtual "web": sorry server: missing mandatory attribute "name"/],
        [['<sorry name="s" port="80" weight="1"/>'], /:4: error: .*sorry "s": missing mandatory attribute "addr"/],
        [['<sorry name="s" addr="2001:db8::9" port="80" weight="1"/>'], /:4: error: .*sorry "s": attribute "addr": IPv6 sorry server in an IPv4 virtual/],
        [['<sorry name="s" addr="10.0.0.9" port="80" weight="1"/>', '<sorry name="t" addr="10.0.0.8" port="80" weight="1"/>'], /^conf\.xml:5: error: virtual "web": double 'sorry' tag! \(first at line 4/],
        [['<sorry name="s" addr="10.0.0.9" port="80" weight="1">', '<real name="x" addr="10.0.0.7" port="80" weight="1"/>', '</sorry>'], /^conf\.xml:5: error: .*Unknown tag inside sorry: \(real\)/],
      ];
      for (const [body, re] of cases) {
        const r = await parse(conf('', body));
        assert.equal(r.config, undefined, body.join(' '));
        assert.ok(errorsOf(r).some((e) => re.test(e)), `${body.join(' ')}: ${errorsOf(r).join('; ')}`);
      }
      const first = await parse(`<surealived>\n<virtual name="web" addr="192.0.2.10" port="80" proto="tcp" sched="wrr" rt="dr">\n<sorry name="s" addr="10.0.0.9" port="80" weight="1"/>\n${TESTER}\n</virtual>\n</surealived>`);
      assert.ok(errorsOf(first).includes('conf.xml:3: error: virtual "web": Unknown tag inside virtual: (sorry): the <tester> must be the first element'), errorsOf(first).join('; '));
    });

    it('an IPv6 sorry server fits an IPv6 virtual, and any family with rt="tun"', async () => {
      const v6 = await parse(
        `<surealived><virtual name="w6" addr="2001:db8::1" port="80" proto="tcp" sched="wrr" rt="dr">${TESTER}<real name="a" addr="2001:db8::10" port="80" weight="1"/><sorry name="s" addr="2001:DB8::99" port="80" weight="1"/></virtual></surealived>`,
      );
      assert.deepEqual(errorsOf(v6), []);
      assert.equal(v6.config!.virtuals[0]!.sorry!.addr, '2001:db8::99', 'canonical form');
      const tun = await parse(conf('', [...REALS, '<sorry name="s" addr="2001:db8::99" port="80" weight="1" rt="tun"/>']));
      assert.deepEqual(errorsOf(tun), []);
    });

    it('warns about probe attributes (a sorry server is never probed) and about a notifier that cannot run here', async () => {
      const r = await parse(conf('', [...REALS, '<sorry name="s" addr="10.0.0.9" port="80" weight="1" testport="81" retries2ok="2" notify_up="/nonexistent/up.sh"/>']), (p) => (p.startsWith('/nonexistent') ? 'no such file or directory (ENOENT)' : undefined));
      assert.deepEqual(errorsOf(r), []);
      const w = warningsOf(r).join('\n');
      assert.match(w, /conf\.xml:6: warning: virtual "web": sorry "s": unknown attribute "testport" ignored: a sorry server is never probed/);
      assert.match(w, /unknown attribute "retries2ok" ignored: a sorry server is never probed/);
      assert.match(w, /attribute "notify_up": "\/nonexistent\/up\.sh" is not executable here/);
    });
  });
});
