// Exhaustion with real worker threads: NOWAIT fails cleanly at the limit;
// M_WAITOK sleepers in several workers are served in FIFO order when items come
// back or when the limit is raised; a newcomer never takes an item owed to a
// sleeper; M_WAITOK on a full arena sleeps until pages come back.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { setTimeout as delay } from 'node:timers/promises';
import { testUma, leakCheck } from '../helpers.js';
import type { Uma } from '../../uma/uma.js';
import type { Zone } from '../../uma/zone.js';
import { zoneStats } from '../../uma/stats.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { C_ITEM, C_ORDER, C_RELEASE, C_SERVED, C_TURN, C_WORDS } from '../workers/uma-sleeper.js';

const SLEEPER = new URL('../workers/uma-sleeper.js', import.meta.url);
const NSLEEPERS = 3;

/** Workers of the running test: a failed assertion must not leave a sleeper hanging the run. */
const live: Worker[] = [];
afterEach(async () => {
  for (const w of live.splice(0)) await w.terminate();
});

/** Poll (without blocking the event loop) until cond() holds; fail after `ms`. */
async function until(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(2);
  }
}

interface Sleepers {
  ctl: Int32Array;
  workers: Worker[];
  exited: Promise<unknown>[];
}

/** Start the sleeper workers; once ready, let them sleep one after the other, in id order. */
async function startSleepers(uma: Uma, zone: Zone): Promise<Sleepers> {
  const ctl = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
  ctl.fill(-1, C_ORDER, C_ORDER + NSLEEPERS);
  ctl[C_TURN] = -1;
  const workers: Worker[] = [];
  const ready: Promise<unknown>[] = [];
  const exited: Promise<unknown>[] = [];
  for (let id = 0; id < NSLEEPERS; id++) {
    const w = new Worker(SLEEPER, { workerData: { sab: uma.arena.sab, ctl: ctl.buffer, id, zone: zone.name } });
    workers.push(w);
    live.push(w);
    ready.push(new Promise((res, rej) => {
      w.once('message', res);
      w.once('error', rej);
    }));
    exited.push(new Promise((res, rej) => {
      w.on('exit', res);
      w.on('error', rej);
    }));
  }
  await Promise.all(ready);
  for (let id = 0; id < NSLEEPERS; id++) {
    Atomics.store(ctl, C_TURN, id);
    Atomics.notify(ctl, C_TURN);
    // The sleeper has its FIFO ticket once it counts among the zone's sleepers.
    await until(() => zone.sleepers === id + 1, `sleeper ${id} to queue`);
  }
  return { ctl, workers, exited };
}

async function finish(s: Sleepers): Promise<void> {
  Atomics.store(s.ctl, C_RELEASE, 1);
  Atomics.notify(s.ctl, C_RELEASE);
  await Promise.all(s.exited);
}

function serveOrder(ctl: Int32Array): number[] {
  return Array.from({ length: NSLEEPERS }, (_, id) => ctl[C_ORDER + id]);
}

for (const limit of [4, 64]) {
  test(`limit ${limit}: NOWAIT fails at the limit; WAITOK sleepers in ${NSLEEPERS} workers served FIFO as items come back; no newcomer steals`, async () => {
    const uma = testUma();
    const done = leakCheck(uma);
    const zone = uma.zcreate(`fifo${limit}`, { size: 64 });
    zone.setMaxItems(limit);
    const held: number[] = [];
    for (let i = 0; i < limit; i++) held.push(zone.alloc(M_NOWAIT));
    assert.ok(held.every((x) => x > 0));
    const fails = zoneStats(zone).fails;
    assert.equal(zone.alloc(M_NOWAIT), 0, 'NOWAIT at the limit returns 0');
    assert.equal(zoneStats(zone).fails, fails + 1, 'and counts a failure');

    const s = await startSleepers(uma, zone);
    assert.deepEqual(serveOrder(s.ctl), [-1, -1, -1], 'nobody served while the zone is at its limit');
    // One item comes back: it is owed to sleeper 0. A newcomer on this CPU must not get it.
    zone.free(held.pop()!);
    assert.equal(zone.alloc(M_NOWAIT), 0, 'newcomer did not overtake the sleepers');
    await until(() => Atomics.load(s.ctl, C_SERVED) === 1, 'the first sleeper');
    assert.deepEqual(serveOrder(s.ctl), [0, -1, -1], 'the head sleeper was served first');
    // Each further item makes room for exactly one sleeper: the next ticket, never a later one.
    for (let k = 1; k < NSLEEPERS; k++) {
      zone.free(held.pop()!);
      await until(() => Atomics.load(s.ctl, C_SERVED) === k + 1, `sleeper ${k}`);
      await delay(5); // give a wrongly woken later sleeper the chance to show up
      assert.deepEqual(serveOrder(s.ctl), [0, 1, 2].map((id) => (id <= k ? id : -1)), `FIFO after ${k + 1} frees`);
    }
    const items = new Set(Array.from({ length: NSLEEPERS }, (_, id) => s.ctl[C_ITEM + id]));
    assert.equal(items.size, NSLEEPERS, 'distinct items');
    assert.ok(zoneStats(zone).sleeps >= NSLEEPERS);
    assert.ok(zone.items <= limit, `zone holds ${zone.items} <= limit ${limit}`);
    await finish(s);
    for (const it of held) zone.free(it);
    zone.setMaxItems(0);
    zone.drain();
    assert.equal(zone.sleepers, 0);
    done();
  });
}

test('raising the limit at run time wakes the sleepers, in FIFO order', async () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const zone = uma.zcreate('raise', { size: 128 });
  zone.setMaxItems(8);
  const held: number[] = [];
  for (let i = 0; i < 8; i++) held.push(zone.alloc(M_NOWAIT));
  const s = await startSleepers(uma, zone);
  await delay(20);
  assert.equal(Atomics.load(s.ctl, C_SERVED), 0);
  for (let k = 0; k < NSLEEPERS; k++) {
    zone.setMaxItems(8 + k + 1); // room for one more: the next ticket only
    await until(() => Atomics.load(s.ctl, C_SERVED) === k + 1, `sleeper ${k} after the raise`);
    await delay(5);
    assert.deepEqual(serveOrder(s.ctl), [0, 1, 2].map((id) => (id <= k ? id : -1)), `FIFO after raise ${k + 1}`);
  }
  assert.equal(zone.alloc(M_NOWAIT), 0, 'the raise was used up by the sleepers');
  await finish(s);
  for (const it of held) zone.free(it);
  zone.setMaxItems(0);
  zone.drain();
  done();
});

test('M_WAITOK on a full arena sleeps until pages come back; NOWAIT fails cleanly', async () => {
  const uma = testUma({ size: 2 << 20 });
  const done = leakCheck(uma);
  const hog = uma.zcreate('hog', { size: 2048 });
  const other = uma.zcreate('waiter', { size: 4096 });
  const held: number[] = [];
  for (let x = hog.alloc(M_NOWAIT); x !== 0; x = hog.alloc(M_NOWAIT)) held.push(x);
  assert.ok(held.length > 100);
  assert.equal(other.alloc(M_NOWAIT), 0, 'NOWAIT on a full arena returns 0');
  assert.equal(zoneStats(other).fails, 1);
  const ctl = new Int32Array(new SharedArrayBuffer(C_WORDS * 4));
  ctl[C_TURN] = 0;
  const w = new Worker(SLEEPER, { workerData: { sab: uma.arena.sab, ctl: ctl.buffer, id: 0, zone: 'waiter' } });
  live.push(w);
  const exited = new Promise((res, rej) => {
    w.on('exit', res);
    w.on('error', rej);
  });
  await until(() => zoneStats(other).sleeps > 0, 'the worker to sleep for memory');
  await delay(30);
  assert.equal(Atomics.load(ctl, C_SERVED), 0, 'still asleep: no pages');
  for (const it of held) hog.free(it);
  hog.drain(); // pages go back to the page allocator and wake the sleeper
  await until(() => Atomics.load(ctl, C_SERVED) === 1, 'the memory sleeper');
  assert.ok(ctl[C_ITEM] > 0);
  Atomics.store(ctl, C_RELEASE, 1);
  Atomics.notify(ctl, C_RELEASE);
  await exited;
  other.drain();
  done();
});
