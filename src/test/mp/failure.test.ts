// A handler that throws, outside debug mode: counted, logged (rate-limited), answered, and the CPU goes on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { testUma, leakCheck } from '../helpers.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { EFAULT } from '../../kern/errno.js';
import { CMD_ECHO, CMD_THROW, TEST_ZONE } from '../workers/mp-handlers.js';
import { L_NOW, L_THROW_CALLOUT } from '../workers/mp-lwkt.js';

const HANDLERS = fileURLToPath(new URL('../workers/mp-handlers.js', import.meta.url));
const LWKT = fileURLToPath(new URL('../workers/mp-lwkt.js', import.meta.url));

async function nodebug() {
  const uma = testUma({ ncpus: 16, size: 32 << 20, debug: false });
  const mb = Mbufs.create(uma);
  uma.zcreate(TEST_ZONE, { size: 64 });
  const done = leakCheck(uma);
  const logs: string[] = [];
  const waiters: { re: RegExp; res: () => void }[] = [];
  uma.logger = (l) => {
    logs.push(l);
    for (const w of waiters.filter((w) => w.re.test(l))) w.res();
  };
  /** Resolves when a line matching re has been logged (CPU logs arrive by postMessage). */
  const logged = (re: RegExp): Promise<void> => (logs.some((l) => re.test(l)) ? Promise.resolve() : new Promise((res) => waiters.push({ re, res })));
  const m = await Machine.start({ uma, ncpus: 2, handlers: [HANDLERS, LWKT], spinUs: 0, clock: 'manual' });
  return { m, logs, logged, done: () => (mb.drainPacketCache(), done()) };
}

test('outside debug mode a throwing handler is answered EFAULT, counted and logged with CPU and handler name; the CPU goes on', async () => {
  const { m, logs, logged, done } = await nodebug();
  try {
    const first = logged(/^cpu1: handler "throw" \(cmd 0x68\) threw \(counted, CPU goes on\): Error: handler boom/);
    for (let i = 0; i < 100; i++) assert.deepEqual(await m.call(1, CMD_THROW), [EFAULT]);
    assert.deepEqual(await m.call(1, CMD_ECHO, [41], 1), [0, 42], 'cpu1 still serves');
    assert.equal(m.handlerErrors(1), 100);
    assert.equal(m.handlerErrors(0), 0);
    assert.equal(m.failures.length, 0);
    assert.equal(m.running, true);
    await first;
    const reports = logs.filter((l) => /^cpu1: handler "throw" \(cmd 0x68\) threw \(counted, CPU goes on\): Error: handler boom/.test(l));
    assert.ok(reports.length >= 1, 'reported with CPU, handler name, command and the error');
    assert.ok(reports.length < 50, `rate-limited (at most 5 a second): ${reports.length} reports of 100 errors`);
  } finally {
    await m.stop();
  }
  assert.equal(m.handlerErrors(), 100, 'the count survives stop');
  done();
});

test('outside debug mode a throwing callout is counted and logged; the CPU goes on', async () => {
  const { m, logged, done } = await nodebug();
  try {
    await m.call(0, L_THROW_CALLOUT, [100]);
    await m.advance(100);
    assert.equal(m.handlerErrors(0), 1);
    await logged(/^cpu0: callout threw \(counted, CPU goes on\): Error: callout boom/);
    assert.equal((await m.call(0, L_NOW, [], 1))[1], 100_000);
  } finally {
    await m.stop();
  }
  done();
});

test('debug mode: a throwing callout stops its CPU with a CpuFault naming the callout', async () => {
  const uma = testUma({ ncpus: 16, size: 32 << 20 });
  const mb = Mbufs.create(uma);
  uma.zcreate(TEST_ZONE, { size: 64 });
  const done = leakCheck(uma);
  const logs: string[] = [];
  const m = await Machine.start({ uma, ncpus: 2, handlers: [HANDLERS, LWKT], spinUs: 0, clock: 'manual', log: (l) => logs.push(l) });
  await m.call(1, L_THROW_CALLOUT, [5]);
  const failed = new Promise((res) => m.once('cpuerror', res));
  await assert.rejects(m.advance(10), (e: NodeJS.ErrnoException) => e.code === 'ESHUTDOWN');
  await failed;
  await m.stop();
  assert.equal(m.failures.length, 1);
  assert.equal(m.failures[0].cpu, 1);
  assert.equal(m.failures[0].handler, 'callout');
  assert.ok(logs.some((l) => /cpu1 failed in callout/.test(l)));
  mb.drainPacketCache();
  done();
});
