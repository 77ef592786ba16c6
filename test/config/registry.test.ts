import { strict as assert } from 'node:assert';
import { TesterLoadError, TesterRegistry, loadTesterModule, testerShapeProblem } from '../../testers/registry.js';
import type { Tester } from '../../testers/contract.js';
import { fixture } from './fixtures.js';

const dummy = (name: string): Tester => ({ name, attrs: [], compile: () => ({}), probe: async () => ({ ok: true, detail: '' }) });

describe('testers: the registry', () => {
  it('has the built-in testers by name', () => {
    const r = TesterRegistry.withBuiltins();
    assert.deepEqual(r.names(), ['dns', 'exec', 'http', 'no-test', 'ping', 'smtp', 'tcp', 'udp']);
    assert.equal(r.get('http')?.name, 'http');
    assert.equal(r.get('lua'), undefined);
  });

  it('add() registers or replaces a tester and refuses a malformed one', () => {
    const r = new TesterRegistry();
    const a = dummy('x');
    r.add(a);
    assert.equal(r.get('x'), a);
    const b = dummy('x');
    r.add(b);
    assert.equal(r.get('x'), b);
    assert.throws(() => r.add({ name: 'y', attrs: [] } as unknown as Tester), /missing `compile/);
    assert.throws(() => r.add({ ...dummy('z'), attrs: [{ name: 'timeout', type: 'uint', doc: '' }] }), /clashes with a generic attribute/);
    assert.throws(() => r.add({ ...dummy('z'), attrs: [{ name: 'a', type: 'float', doc: '' }] } as unknown as Tester), /unknown type "float"/);
  });

  it('resolve(): a name nobody provides is "Tester <name> not registered"', async () => {
    const r = TesterRegistry.withBuiltins();
    await assert.rejects(r.resolve('lua', { baseDir: '/' }), (e: unknown) => e instanceof TesterLoadError && e.message === 'Tester lua not registered');
    await assert.rejects(r.resolve('lua', { baseDir: '/', modulesPath: fixture('modules') }), /Tester lua not registered/);
  });

  it('resolve(): by module path (relative to baseDir or absolute), by modules_path, by package name', async () => {
    const r = TesterRegistry.withBuiltins();
    assert.equal((await r.resolve('echo', { baseDir: fixture('good'), module: '../third-party-tester.js' })).name, 'echo');
    assert.equal((await r.resolve('echo', { baseDir: '/', module: fixture('third-party-tester.js') })).name, 'echo');
    assert.equal((await r.resolve('echo2', { baseDir: '/', modulesPath: fixture('modules') })).name, 'echo2');
    await assert.rejects(r.resolve('echo', { baseDir: '/', module: 'surealived-tester-that-does-not-exist' }), /cannot load tester module "surealived-tester-that-does-not-exist": module not found/);
    assert.equal(r.get('echo'), undefined, 'third-party testers are not added to the registry');
  });

  it('loadTesterModule() explains what is wrong with a module', async () => {
    await assert.rejects(loadTesterModule('./not-a-tester.js', fixture('.')), /does not export a tester/);
    await assert.rejects(loadTesterModule('./bad-shape-tester.js', fixture('.')), /tester "halfdone": missing `probe/);
    await assert.rejects(loadTesterModule('./throwing-module.js', fixture('.')), /Error: boom at import/);
  });

  it('testerShapeProblem() accepts the built-ins', () => {
    for (const t of TesterRegistry.withBuiltins().names()) assert.equal(testerShapeProblem(TesterRegistry.withBuiltins().get(t)), undefined);
  });
});
