// The jiffies <-> epoch ms mapping: pure arithmetic with an injected time source, HZ from the kernel
// config or from two samples, and one check against this host's real /proc/timer_list.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import {
  AnchoredClock,
  hzFromSamples,
  JiffiesError,
  KernelJiffiesClock,
  KNOWN_HZ,
  parseConfigHz,
  parseTimerListJiffies,
  type TimeSource,
} from '../../session-sync/recent/jiffies.js';

/** A time source the test moves by hand: monotonic from 0, epoch = base + monotonic + step. */
function fakeTime(epochBase = 1_700_000_000_000): TimeSource & { mono: number; step: number } {
  const t = {
    mono: 0,
    step: 0,
    monoNow: () => t.mono,
    epochNow: () => epochBase + t.mono + t.step,
  };
  return t;
}

const INITIAL_JIFFIES_250 = 2 ** 32 - 300 * 250; // 4294892296, a 64-bit kernel at boot with HZ 250

describe('session-sync/recent/jiffies', () => {
  describe('parsing kernel text', () => {
    it('reads the jiffies line of /proc/timer_list', () => {
      const text = 'Timer List Version: v0.9\nnow at 123 nsecs\n\ncpu: 0\n .idle_jiffies   : 4294972117\njiffies: 4294972121\n';
      assert.equal(parseTimerListJiffies(text), 4294972121);
    });

    it('says where and why when the jiffies line is missing', () => {
      assert.throws(() => parseTimerListJiffies('cpu: 0\n', '/x/timer_list'), (e: unknown) => {
        assert.ok(e instanceof JiffiesError);
        assert.match(e.message, /^\/x\/timer_list: no "jiffies: N" line/);
        return true;
      });
    });

    it('reads CONFIG_HZ from a kernel config, and nothing from a config without it', () => {
      assert.equal(parseConfigHz('# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n'), 250);
      assert.equal(parseConfigHz('CONFIG_HZ_PERIODIC=y\n'), undefined);
      assert.equal(parseConfigHz('CONFIG_HZ=0\n'), undefined);
    });
  });

  describe('HZ from two samples', () => {
    for (const hz of KNOWN_HZ) {
      it(`rounds a ${hz} Hz measurement, one tick off either way over 400 ms, to ${hz}`, () => {
        const ticks = (hz * 400) / 1000;
        for (const off of [-1, 0, 1]) {
          assert.equal(hzFromSamples({ jiffies: 1000, monoMs: 10 }, { jiffies: 1000 + ticks + off, monoMs: 410 }), hz);
        }
      });
    }

    it('refuses a rate near no known HZ, and samples out of order', () => {
      assert.throws(() => hzFromSamples({ jiffies: 0, monoMs: 0 }, { jiffies: 200, monoMs: 400 }), /measured 500\.0 ticks\/s/);
      assert.throws(() => hzFromSamples({ jiffies: 0, monoMs: 10 }, { jiffies: 5, monoMs: 10 }), /not in time order/);
    });
  });

  describe('AnchoredClock', () => {
    it('maps jiffies to epoch ms and back through the anchor', () => {
      const time = fakeTime();
      const clock = new AnchoredClock(250, { jiffies: INITIAL_JIFFIES_250 + 25_000, monoMs: 0 }, time);
      const now = time.epochNow();
      assert.equal(clock.jiffiesAt(now), INITIAL_JIFFIES_250 + 25_000);
      assert.equal(clock.epochAt(INITIAL_JIFFIES_250 + 25_000 - 250), now - 1000);
      assert.equal(clock.jiffiesAt(now + 2000), INITIAL_JIFFIES_250 + 25_500);
      time.mono += 60_000; // a minute on: jiffies moved with the monotonic clock
      assert.equal(clock.jiffiesAt(time.epochNow()), INITIAL_JIFFIES_250 + 25_000 + 15_000);
    });

    it('keeps ages across a wall clock step: hits move with the wall clock', () => {
      const time = fakeTime();
      const clock = new AnchoredClock(1000, { jiffies: 5_000_000, monoMs: 0 }, time);
      const stamp = 4_997_000; // 3 s before the anchor
      const ageBefore = time.epochNow() - clock.epochAt(stamp);
      time.step = 3_600_000; // NTP steps the wall clock an hour forward
      const ageAfter = time.epochNow() - clock.epochAt(stamp);
      assert.equal(ageBefore, 3000);
      assert.equal(ageAfter, 3000);
    });

    it('reanchor replaces the anchor and says how far the old one had drifted', () => {
      const time = fakeTime();
      const clock = new AnchoredClock(250, { jiffies: 1_000_000, monoMs: 0 }, time);
      const drift = clock.reanchor({ jiffies: 1_000_000 + 2500 + 5, monoMs: 10_000 });
      assert.equal(drift, 20); // 5 ticks at 250 Hz
      assert.deepEqual(clock.anchor, { jiffies: 1_002_505, monoMs: 10_000 });
    });
  });

  describe('KernelJiffiesClock with injected kernel text', () => {
    it('takes HZ from the kernel config and anchors on one sample', async () => {
      const time = fakeTime();
      let reads = 0;
      const clock = await KernelJiffiesClock.start({
        time,
        kernelConfig: async () => 'CONFIG_HZ=300\n',
        timerList: async () => {
          reads += 1;
          return `jiffies: ${4_294_000_000 + reads}\n`;
        },
        readsPerSample: 1,
        sleep: async () => assert.fail('no second sample is needed when the config says HZ'),
      });
      assert.equal(clock.hz, 300);
      assert.equal(clock.hzSource, 'config');
      assert.equal(reads, 1);
      assert.equal(clock.jiffiesAt(time.epochNow()), 4_294_000_001);
    });

    it('measures HZ from two samples when there is no config', async () => {
      const time = fakeTime();
      const clock = await KernelJiffiesClock.start({
        time,
        kernelConfig: async () => undefined,
        // The kernel's jiffies follow the (fake) monotonic clock at 1000 Hz.
        timerList: async () => `jiffies: ${4_294_667_296 + Math.floor(time.mono)}\n`,
        sleep: async (ms) => {
          time.mono += ms;
        },
      });
      assert.equal(clock.hz, 1000);
      assert.equal(clock.hzSource, 'measured');
      time.mono += 5000;
      assert.equal(clock.jiffiesAt(time.epochNow()), 4_294_667_296 + time.mono);
      time.mono += 1; // the kernel ticks on; a fresh sample agrees with the old anchor
      assert.equal(await clock.reanchor(), 0);
    });
  });

  describe('on this host', () => {
    it('finds the kernel HZ both from the config and by measuring, and predicts jiffies', async function () {
      this.timeout(10_000);
      let configHz: number | undefined;
      try {
        configHz = parseConfigHz(gunzipSync(readFileSync('/proc/config.gz')).toString('latin1'));
      } catch {
        configHz = undefined; // kernel without /proc/config.gz: the measured value stands alone
      }
      const measured = await KernelJiffiesClock.start({ kernelConfig: async () => undefined });
      const byDefault = await KernelJiffiesClock.start();
      assert.ok((KNOWN_HZ as readonly number[]).includes(measured.hz), `measured HZ ${measured.hz}`);
      if (configHz !== undefined) {
        assert.equal(byDefault.hzSource, 'config');
        assert.equal(measured.hz, configHz);
      }
      assert.equal(byDefault.hz, measured.hz);
      // A fresh read agrees with the prediction to well within a poll interval: a quarter second, plus
      // half of however long the read took (a busy machine can stall it; the kernel's count was taken
      // somewhere in it).
      const before = Date.now();
      const j = parseTimerListJiffies(readFileSync('/proc/timer_list', 'latin1'));
      const after = Date.now();
      const predicted = measured.jiffiesAt((before + after) / 2);
      const tolerance = measured.hz / 4 + ((after - before) / 2000) * measured.hz;
      assert.ok(Math.abs(predicted - j) < tolerance, `predicted ${predicted}, kernel ${j} (read took ${after - before} ms)`);
    });
  });
});
