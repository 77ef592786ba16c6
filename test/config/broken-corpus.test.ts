import { strict as assert } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatIssue, loadServiceConfig } from '../../surealived/config/xml.js';
import { TesterRegistry } from '../../testers/registry.js';
import { fixture } from './fixtures.js';

// Each file of test/fixtures/broken/ says on its first line what must be reported:
//   <!-- expect: line N <fragment of the error message> -->
const DIR = fixture('broken/');
const EXPECT = /^<!-- expect: line (\d+) (.+) -->$/;

describe('config: the broken corpus is rejected, each file with an error at the expected line', () => {
  const registry = TesterRegistry.withBuiltins();
  const files = readdirSync(DIR).filter((f) => f.endsWith('.xml')).sort();

  it('holds at least 35 broken files, each with an expectation', () => {
    assert.ok(files.length >= 35, `${files.length} files`);
    for (const f of files) assert.match(readFileSync(join(DIR, f), 'utf8').split('\n')[0]!, EXPECT, f);
  });

  for (const f of files) {
    const m = EXPECT.exec(readFileSync(join(DIR, f), 'utf8').split('\n')[0]!);
    const line = Number(m?.[1]);
    const fragment = m?.[2] ?? '';
    it(`${f}: line ${line}: ${fragment}`, async () => {
      const path = join(DIR, f);
      const r = await loadServiceConfig(path, { registry, canExecute: () => undefined });
      assert.equal(r.config, undefined, 'a file with an error yields no config');
      const errors = r.issues.filter((i) => i.severity === 'error');
      const hit = errors.find((i) => i.line === line && i.message.includes(fragment));
      assert.ok(hit, `expected an error at line ${line} containing ${JSON.stringify(fragment)}; got:\n${r.issues.map(formatIssue).join('\n')}`);
      assert.equal(hit.file, path);
      assert.ok(formatIssue(hit).startsWith(`${path}:${line}: error: `));
    });
  }
});
