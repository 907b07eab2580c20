// Locks and witness: the futex mutex under contention from real workers, a
// deliberate lock-order reversal (in one thread and across two workers) caught
// naming both classes and both sites, M_WAITOK with a lock held, recursion,
// and a clean UMA workload producing no report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { testUma, leakCheck } from '../helpers.js';
import { Mutex } from '../../kern/lock/mutex.js';
import { witness } from '../../kern/lock/witness.js';
import { M_NOWAIT, M_WAITOK } from '../../uma/flags.js';
import type { Uma } from '../../uma/uma.js';

const WORKER = new URL('../workers/uma-witness.js', import.meta.url);

function runWorker(data: Record<string, unknown>): Promise<Record<string, unknown>> {
  const w = new Worker(WORKER, { workerData: data });
  return new Promise((res, rej) => {
    w.once('message', res);
    w.once('error', rej);
  });
}

/** Two futex words inside a live item, so they are arena memory nobody else uses. */
function lockWords(uma: Uma): { a: number; b: number; free: () => void } {
  const z = uma.zone('locks', {});
  const item = z.alloc(M_NOWAIT);
  uma.arena.i32.fill(0, item >> 2, (item >> 2) + 4);
  return { a: item >> 2, b: (item >> 2) + 1, free: () => z.free(item) };
}

test('mutex: 4 workers x 5000 lock/unlock pairs keep a plain counter exact', async () => {
  const uma = testUma();
  uma.zcreate('locks', { size: 64, flags: 0 });
  const done = leakCheck(uma);
  const w = lockWords(uma);
  const res = await Promise.all(
    Array.from({ length: 4 }, () => runWorker({ sab: uma.arena.sab, role: 'count', a: w.a, b: w.b, classA: 'test counter', classB: 'test unused', n: 5000 })),
  );
  assert.equal(uma.arena.i32[w.b], 20000);
  assert.equal(Atomics.load(uma.arena.i32, w.a), 0, 'left unlocked');
  assert.ok(res.every((r) => r.ok === true));
  // The counter word is not trash any more: give the item back clean.
  uma.arena.i32.fill(0, w.a, w.a + 4);
  w.free();
  done();
});

test('lock-order reversal in one thread names both classes and both sites', () => {
  const uma = testUma();
  uma.zcreate('locks', { size: 64 });
  const done = leakCheck(uma);
  const w = lockWords(uma);
  const A = new Mutex(uma.arena.i32, w.a, 'test alpha');
  const B = new Mutex(uma.arena.i32, w.b, 'test beta');
  A.lock();
  B.lock(); // establishes alpha -> beta
  B.unlock();
  A.unlock();
  B.lock();
  let err: (Error & { code?: string }) | undefined;
  try {
    A.lock();
  } catch (e) {
    err = e as Error & { code?: string };
  }
  B.unlock();
  assert.ok(err, 'reversal reported');
  assert.equal(err.code, 'ERR_SLABNET_LOR');
  assert.match(err.message, /1st "test beta" @ .*witness\.test\.js:\d+/);
  assert.match(err.message, /2nd "test alpha" @ .*witness\.test\.js:\d+/);
  assert.match(err.message, /established order: "test alpha" before "test beta" \(first seen @ .*witness\.test\.js:\d+/);
  assert.equal(A.isLocked(), false, 'the reversed lock was not taken');
  // Recursion on a held lock is reported too.
  A.lock();
  assert.throws(() => A.lock(), { code: 'ERR_SLABNET_LOCK_RECURSION' });
  A.unlock();
  w.free();
  done();
});

test('lock-order reversal across two worker threads is caught (the order lives in the arena)', async () => {
  const uma = testUma();
  uma.zcreate('locks', { size: 64 });
  const done = leakCheck(uma);
  const w = lockWords(uma);
  const base = { sab: uma.arena.sab, a: w.a, b: w.b, classA: 'test softc', classB: 'test ifq' };
  const first = await runWorker({ ...base, role: 'order' });
  assert.equal(first.ok, true);
  const second = await runWorker({ ...base, role: 'reverse' });
  assert.equal(second.code, 'ERR_SLABNET_LOR');
  const msg = String(second.message);
  assert.match(msg, /1st "test ifq" @ .*uma-witness\.js:\d+/);
  assert.match(msg, /2nd "test softc" @ .*uma-witness\.js:\d+/);
  assert.match(msg, /established order: "test softc" before "test ifq" \(first seen @ .*uma-witness\.js:\d+/);
  assert.equal(Atomics.load(uma.arena.i32, w.a), 0);
  assert.equal(Atomics.load(uma.arena.i32, w.b), 0);
  w.free();
  done();
});

test('M_WAITOK allocation with a lock held is reported (the seed WITNESS problem); M_NOWAIT is fine', () => {
  const uma = testUma();
  const z = uma.zcreate('sleepy', { size: 64 });
  uma.zcreate('locks', { size: 64 });
  const done = leakCheck(uma);
  const w = lockWords(uma);
  const L = new Mutex(uma.arena.i32, w.a, 'test rip');
  L.lock();
  const ok = z.alloc(M_NOWAIT);
  assert.ok(ok > 0, 'NOWAIT under a lock is allowed');
  assert.throws(
    () => z.alloc(M_WAITOK),
    (e: Error & { code?: string }) => e.code === 'ERR_SLABNET_SLEEP_WITH_LOCK' && /zone "sleepy"/.test(e.message) && /"test rip" held/.test(e.message),
  );
  L.unlock();
  const later = z.alloc(M_WAITOK);
  assert.ok(later > 0);
  z.free(ok);
  z.free(later);
  w.free();
  done();
});

test('an ordinary UMA workload takes its locks in a consistent order: no witness report', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const before = witness.reports.length;
  const zs = [uma.zcreate('w1', { size: 64 }), uma.zcreate('w2', { size: 2048 })];
  const items: number[] = [];
  for (let r = 0; r < 3; r++) {
    for (const z of zs) for (let i = 0; i < 700; i++) items.push(z.alloc(M_WAITOK));
    for (const it of items.splice(0)) uma.zoneOfItem(it)!.free(it);
    uma.reclaim();
  }
  assert.equal(witness.reports.length, before);
  done();
});
