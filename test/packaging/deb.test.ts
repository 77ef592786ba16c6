// The Debian package (packaging/build-deb.sh, `npm run package`): built from this checkout, checked by
// lintian, then installed, run and purged in the qemu lab's guest, a throwaway root (never the host):
// one boot for the whole life cycle (test/kernel/guest/deb-checks.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labUnavailable } from '../../lab/lab.js';
import { itPerCheck, REPO, runGuestScript, type GuestScriptRun } from '../kernel/guest-run.js';

const GUEST_SCRIPT = 'dist/test/kernel/guest/deb-checks.js';

const DEB_CHECKS = {
  install: 'dpkg -i installs the package (its Depends met by the installed nodejs)',
  files: 'programs on the PATH, conffiles, units, man pages and docs with their owners and modes; no build paths, no dev dependencies',
  user: 'postinst created the surealived system user, owning the state and log directories (the original\'s layout)',
  configTest: 'surealived -t accepts the shipped example XML',
  manPages: 'man renders each of the six man pages',
  unitsVerify: 'systemd-analyze verify accepts every unit',
  surealived: 'surealived, started by its unit\'s ExecStartPre/ExecStart as its user with no capability, answers vlist on its control port',
  ipvssync: 'ipvssync, started by its unit\'s ExecStart as surealived with CAP_NET_ADMIN only, puts the hand-off into the kernel IPVS table',
  ssyncd: 'ssyncd, started by its unit\'s ExecStart with /etc/default/ssyncd, answers ssyncdctl show mode with master',
  remove: 'dpkg -r removes the programs and keeps the conffiles',
  purge: 'dpkg -P leaves nothing behind but the system user',
} as const;

interface DebReport {
  checks: { id: keyof typeof DEB_CHECKS; ok: boolean; detail?: string }[];
}

describe('Debian package (npm run package), installed in the lab guest', function () {
  this.timeout(25 * 60_000);
  let deb = '';
  let lintian = { status: -1, output: '' };
  let g: GuestScriptRun<DebReport> = { run: undefined, report: undefined, failure: 'not run' };

  before(async function () {
    const why = labUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    const share = await mkdtemp(join(tmpdir(), 'surealived-deb-'));
    const build = spawnSync('sh', [join(REPO, 'packaging/build-deb.sh'), '--out', share, '--no-lint'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(build.status, 0, `build-deb.sh failed:\n${build.stderr.slice(-4000)}`);
    deb = build.stdout.trim().split('\n').pop() ?? '';
    const l = spawnSync('lintian', ['--fail-on', 'error', '--tag-display-limit', '0', deb], { encoding: 'utf8' });
    lintian = { status: l.status ?? -1, output: `${l.stdout}${l.stderr}` };
    console.log(`      lintian ${deb.split('/').pop()}:\n${lintian.output.replace(/^/gm, '        ')}`);
    g = await runGuestScript<DebReport>(
      this,
      GUEST_SCRIPT,
      `ip link set lo up && modprobe ip_vs && node ${GUEST_SCRIPT} ${deb} "$LAB_SHARE/deb-report.json"`,
      'deb-report.json',
      { shareDir: share, timeoutMs: 12 * 60_000 },
    );
  });

  it('is named surealived-ts_<version>_amd64.deb', () => {
    const { version } = JSON.parse(spawnSync('cat', [join(REPO, 'package.json')], { encoding: 'utf8' }).stdout) as { version: string };
    assert.equal(deb.split('/').pop(), `surealived-ts_${version}_amd64.deb`);
  });

  it('lintian reports no error', () => {
    assert.equal(lintian.status, 0, lintian.output);
    assert.doesNotMatch(lintian.output, /^E: /m);
  });

  itPerCheck(DEB_CHECKS, () => g);
});
