// The manual clock of a Machine: real worker CPUs, virtual time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { testUma, leakCheck } from '../helpers.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { ArgumentError } from '../../kern/errors.js';
import { L_ARM, L_FIRED, L_NOW } from '../workers/mp-lwkt.js';

const HANDLERS = fileURLToPath(new URL('../workers/mp-lwkt.js', import.meta.url));

async function manual(ncpus: number) {
  const uma = testUma({ ncpus: 16, size: 32 << 20 });
  const mb = Mbufs.create(uma);
  const done = leakCheck(uma);
  const m = await Machine.start({ uma, ncpus, handlers: [HANDLERS], spinUs: 0, clock: 'manual' });
  return { m, done: () => (mb.drainPacketCache(), done()) };
}

test('manual clock: a 10 s callout on a worker CPU fires after advance(10000), at 10000 ms, not before', async () => {
  const { m, done } = await manual(2);
  try {
    assert.equal(m.clock.manual, true);
    assert.equal(m.clock.now(), 0);
    const [e] = await m.call(1, L_ARM, [10000, 7, 0, 0]);
    assert.equal(e, 0);
    await m.advance(9999);
    assert.deepEqual(await m.call(1, L_FIRED, [0], 3), [0, 0, -1, -1], 'not due at 9999 ms');
    const [, now] = await m.call(0, L_NOW, [], 1);
    assert.equal(now, 9999 * 1000, 'every CPU reads the machine clock');
    await m.advance(1);
    assert.deepEqual(await m.call(1, L_FIRED, [0], 3), [0, 1, 7, 10000 * 1000]);
  } finally {
    await m.stop();
  }
  done();
});

test('manual clock: advance steps to each due time across CPUs, so a callout chain hopping between CPUs fires in order at its times', async () => {
  const { m, done } = await manual(3);
  try {
    // cpu0 fires at 100 and arms cpu1 (+50 -> 150), which arms cpu2 (+50 -> 200), which arms cpu0 (+50 -> 250).
    await m.call(0, L_ARM, [100, 1, 3, 50]);
    await m.advance(1000);
    const times: [number, number][] = [];
    for (const [cpu, i] of [[0, 0], [1, 0], [2, 0], [0, 1]] as const) {
      const [, n, tag, at] = await m.call(cpu, L_FIRED, [i], 3);
      assert.ok(n >= 1, `cpu${cpu} fired`);
      times.push([tag, at / 1000]);
    }
    assert.deepEqual(times, [[1, 100], [2, 150], [3, 200], [4, 250]]);
    assert.equal(m.clock.now(), 1000);
  } finally {
    await m.stop();
  }
  done();
});

test('manual clock: advance on a real-clock machine is an ArgumentError; advance after stop is refused', async () => {
  const uma = testUma({ ncpus: 8, size: 32 << 20 });
  const done = leakCheck(uma);
  Mbufs.create(uma);
  const real = await Machine.start({ uma, ncpus: 1, handlers: [HANDLERS], spinUs: 0 });
  await assert.rejects(real.advance(1), ArgumentError);
  await real.stop();
  const man = await Machine.start({ uma, ncpus: 1, handlers: [HANDLERS], spinUs: 0, clock: 'manual' });
  await assert.rejects(man.advance(-1), ArgumentError);
  await man.stop();
  await assert.rejects(man.advance(1), (e: NodeJS.ErrnoException) => e.code === 'ESHUTDOWN');
  done();
});
