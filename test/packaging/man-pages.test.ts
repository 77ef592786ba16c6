// README.md and the man pages (man/*.scd, turned into roff by scdoc at package time) document the same
// things: every main-config key, ssyncd key, ssyncdctl command and XML attribute in one is in the other.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../kernel/guest-run.js';

const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
const man = (name: string): string => readFileSync(join(REPO, 'man', `${name}.scd`), 'utf8');

/** First-column cells of the `skip`-th table after `heading` (up to the next `## ` heading). */
function readmeColumn(heading: string, skip = 0): string[] {
  const at = readme.indexOf(heading);
  assert.ok(at >= 0, `README.md has no "${heading}"`);
  const tables: string[][] = [];
  let cur: string[] | undefined;
  for (const l of readme.slice(at).split('\n').slice(1)) {
    if (l.startsWith('## ') && tables.length > 0) break;
    if (l.startsWith('|')) {
      if (!cur) tables.push((cur = []));
      cur.push(l);
    } else cur = undefined;
  }
  const rows = tables[skip];
  assert.ok(rows, `README.md: no table ${skip} after "${heading}"`);
  return rows.slice(2).map((r) => r.slice(1).split(/(?<!\\)\|/)[0]!.trim());
}

/** Names in backquotes of README cells, e.g. "`heartbeat_ms` / `dead_time_ms`" -> both. */
const codeNames = (cells: string[]): string[] => cells.flatMap((c) => [...c.matchAll(/`([^`]+)`/g)].map((m) => m[1]!));

/** Terms of a man page's definition list (a bold word at the start of a line) in `section`. */
function manTerms(page: string, section: string): string[] {
  const text = man(page);
  const at = text.indexOf(`\n# ${section}\n`);
  assert.ok(at >= 0, `${page}: no section ${section}`);
  const body = text.slice(at + section.length + 4).split(/\n# /)[0]!;
  return body
    .split('\n')
    .filter((l) => l.startsWith('*'))
    .map((l) => l.split(/ \((?:default|required): /)[0]!)
    .flatMap((l) => [...l.matchAll(/\*((?:\\.|[^*\\])+)\*/g)].map((m) => m[1]!.replace(/\\(.)/g, '$1')));
}

function sameSet(what: string, fromReadme: string[], fromMan: string[]): void {
  const a = new Set(fromReadme);
  const b = new Set(fromMan);
  assert.ok(a.size > 0, `${what}: nothing found in README.md`);
  assert.deepEqual([...a].filter((x) => !b.has(x)), [], `${what}: in README.md, missing from the man page`);
  assert.deepEqual([...b].filter((x) => !a.has(x)), [], `${what}: in the man page, missing from README.md`);
}

describe('man pages and README.md', () => {
  it('every main-config key in README\'s table is in surealived.cfg(5), and vice versa', () => {
    sameSet('surealived.cfg keys', codeNames(readmeColumn('## Main configuration (`surealived.cfg`)')), manTerms('surealived.cfg.5', 'KEYS'));
  });

  it('every ssyncd.cfg key is in ssyncd(8), and vice versa', () => {
    sameSet('ssyncd.cfg keys', codeNames(readmeColumn('### Configuration (`/etc/ssyncd/ssyncd.cfg`')), manTerms('ssyncd.8', 'CONFIGURATION'));
  });

  it('every ssyncdctl command is in ssyncdctl(8), and vice versa', () => {
    sameSet('ssyncdctl commands', codeNames(readmeColumn('### Commands')), manTerms('ssyncdctl.8', 'COMMANDS'));
  });

  it('every XML attribute of <virtual>, <tester>, the built-in testers and <real> is in surealived.xml(5), and vice versa', () => {
    const fromReadme = [
      ...readmeColumn('### `<virtual>`'),
      ...readmeColumn('### `<tester>`'),
      ...readmeColumn('### `<real>`'),
    ].flatMap((c) => (c.includes('`') ? codeNames([c]) : []));
    const testerAttrs = readme.slice(readme.indexOf('Tester attributes of each built-in tester'), readme.indexOf('### `<real>`'));
    const rows = testerAttrs.split('\n').filter((l) => l.startsWith('| `') || l.startsWith('| |'));
    // Tester names (first column) and their attributes (second): the man page names both on each line.
    const perTester = rows.flatMap((r) => codeNames([r.split('|')[1]!, r.split('|')[2]!]));
    const manAttrs = manTerms('surealived.xml.5', 'ELEMENTS AND ATTRIBUTES');
    sameSet('XML attributes', [...fromReadme, ...perTester], manAttrs);
  });

  it('every man page source is valid scdoc', function () {
    try {
      execFileSync('scdoc', [], { input: '' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.skip(); // npm run package installs it
    }
    for (const page of ['surealived.8', 'ipvssync.8', 'ssyncd.8', 'ssyncdctl.8', 'surealived.cfg.5', 'surealived.xml.5']) {
      const roff = execFileSync('scdoc', [], { input: man(page) }).toString();
      assert.match(roff, /^\.TH /m, page);
    }
  });
});
