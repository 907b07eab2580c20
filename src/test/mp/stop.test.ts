// Stop in any order, and what messages carry when they are dropped undelivered.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { testUma, leakCheck } from '../helpers.js';
import { Machine, MachineError } from '../../kern/lwkt/machine.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { ESHUTDOWN } from '../../kern/errno.js';
import { M_NOWAIT, M_ZERO } from '../../uma/flags.js';
import { portDepth } from '../../kern/lwkt/port.js';
import { zoneStats } from '../../uma/stats.js';
import { L_DEFER, L_FLOOD, L_HOLD, L_NOW, L_TIMER } from '../workers/mp-lwkt.js';
import { MSG_F_NOWAIT } from '../../kern/lwkt/msgport.js';
import { Worker } from 'node:worker_threads';

const HANDLERS = fileURLToPath(new URL('../workers/mp-lwkt.js', import.meta.url));
const BAD_REGISTER = fileURLToPath(new URL('../workers/mp-badregister.js', import.meta.url));

async function setup(ncpus: number, extra: { portCapacity?: number; handlers?: string[] } = {}) {
  const uma = testUma({ ncpus: 16, size: 32 << 20 });
  const mb = Mbufs.create(uma);
  const words = uma.zcreate('lwkt test words', { size: 16 });
  const done = leakCheck(uma);
  const m = await Machine.start({ uma, ncpus, handlers: [HANDLERS], spinUs: 0, ...extra });
  return { uma, mb, m, words, done: () => (mb.drainPacketCache(), done()) };
}

type Setup = Awaited<ReturnType<typeof setup>>;

/**
 * Park `cpu` on a fresh arena word (L_HOLD, nobody waits for it) and wait
 * until it is parked (its port empty); release() lets it go, free() gives
 * the word back.
 */
async function hold(s: Setup, cpu: number, die = false): Promise<{ release: () => void; free: () => void; msg: number }> {
  const w = s.words.alloc(M_NOWAIT | M_ZERO);
  const ctx = s.m.ctx;
  const msg = ctx.allocmsg(L_HOLD);
  ctx.setArg(msg, 0, w);
  ctx.setArg(msg, 1, die ? 1 : 0);
  assert.ok(ctx.sendmsg(cpu, msg, MSG_F_NOWAIT));
  const parked = Atomics.waitAsync(s.uma.arena.i32, (w >> 2) + 1, 0);
  if (parked.async) await parked.value;
  return {
    release: () => {
      Atomics.store(s.uma.arena.i32, w >> 2, 1);
      Atomics.notify(s.uma.arena.i32, w >> 2);
    },
    free: () => s.words.free(w),
    msg,
  };
}

/** Fill `cpu`'s port with mbuf-carrying L_SINK messages from CPU `from` (the target is parked). */
async function flood(s: Setup, from: number, cpu: number, cap: number): Promise<void> {
  const [e, sent] = await s.m.call(from, L_FLOOD, [cpu, 10 * cap], 2);
  assert.equal(e, 0);
  assert.equal(sent, cap, 'the flood filled the port; the refused chain went with dropmsg');
  assert.equal(portDepth(s.uma.arena.i32, s.m.port(cpu)), cap);
  assert.ok(zoneStats(s.uma.zone('mbuf')).used >= cap);
}

test('stop with a port full of messages carrying mbufs: the stopping CPU frees every chain (cargo), nothing leaks', async () => {
  const s = await setup(2, { portCapacity: 64 });
  const h = await hold(s, 1);
  await flood(s, 0, 1, 64);
  const stopped = s.m.stop();
  h.release();
  await stopped;
  assert.equal(s.m.failures.length, 0);
  h.free();
  s.done();
});

test('a CPU that dies with a full port: the main thread drains it and frees the chains the messages carry', async () => {
  const s = await setup(2, { portCapacity: 32 });
  const h = await hold(s, 1, true);
  await flood(s, 0, 1, 32);
  const failed = new Promise<MachineError>((res) => s.m.once('cpuerror', res));
  h.release(); // cpu1 exits with code 3, its port still full
  const f = await failed;
  assert.equal(f.cpu, 1);
  await s.m.stop();
  assert.equal(s.m.stopReason?.kind, 'cpu');
  // The one message the CPU owned when it died (its handler's) died with it: ours to free.
  s.m.ctx.freemsg(h.msg);
  h.free();
  s.done();
});

test('stop is safe twice, concurrently, and while domsg calls are in flight: every call answers, nothing leaks', async () => {
  const s = await setup(2);
  const calls: Promise<number[]>[] = [];
  for (let i = 0; i < 200; i++) calls.push(s.m.call(i & 1, L_NOW, [], 1));
  const a = s.m.stop();
  const b = s.m.stop();
  for (let i = 0; i < 50; i++) calls.push(s.m.call(i & 1, L_NOW, [], 1));
  await Promise.all([a, b]);
  await s.m.stop();
  const res = await Promise.all(calls);
  assert.ok(res.every(([e]) => e === 0 || e === ESHUTDOWN), 'answered or refused, never hung');
  assert.ok(res.slice(200).every(([e]) => e === ESHUTDOWN), 'calls after stop began are refused');
  assert.deepEqual(s.m.stopReason, { kind: 'stop' });
  s.done();
});

test('stop does not wait for JS timers a handler left, and answers messages a handler kept through its shutdown hook', async () => {
  const s = await setup(2);
  // A ref'd 10-minute timer on each CPU, and a kept message.
  for (const c of [0, 1]) assert.equal((await s.m.call(c, L_TIMER, [600_000]))[0], 0);
  const kept = s.m.call(1, L_DEFER);
  await s.m.call(1, L_NOW); // same sender, same CPU: L_DEFER was taken before this answer
  const stopped = s.m.stop().then(() => 'stopped');
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<string>((res) => (t = setTimeout(() => res('still waiting after 60 s'), 60_000)));
  assert.equal(await Promise.race([stopped, late]), 'stopped');
  clearTimeout(t);
  assert.deepEqual(await kept, [0]);
  s.done();
});

test('a CPU failing during start: start rejects with its MachineError, the CPUs that started are stopped, nothing leaks', async () => {
  const uma = testUma({ ncpus: 16, size: 32 << 20 });
  Mbufs.create(uma);
  const done = leakCheck(uma);
  const logs: string[] = [];
  await assert.rejects(
    Machine.start({ uma, ncpus: 3, handlers: [HANDLERS, BAD_REGISTER], spinUs: 0, log: (l) => logs.push(l) }),
    (e: MachineError) => e instanceof MachineError && e.cpu === 2 && /register refused on cpu2/.test(e.message),
  );
  assert.ok(logs.some((l) => /cpu2 failed/.test(l)), 'the failure is logged');
  done();
});

test('a CPU that dies holding a request: a user worker blocked in domsg gets ESHUTDOWN, not an endless sleep', async () => {
  const s = await setup(2);
  const w = s.words.alloc(M_NOWAIT | M_ZERO);
  const w2 = s.words.alloc(M_NOWAIT | M_ZERO);
  const i32 = s.uma.arena.i32;
  // The main thread's call is held by cpu0 (which does not die); a user worker's call is held by cpu1, which dies.
  const mainCall = s.m.call(0, L_HOLD, [w2, 0]);
  const worker = new Worker(new URL('../workers/mp-caller.js', import.meta.url), { workerData: { info: s.m.info(), cpu: 1, cmd: L_HOLD, args: [w, 1] } });
  const exited = new Promise((res) => worker.once('exit', res));
  const result = new Promise<number[]>((res, rej) => {
    worker.on('message', (r) => r !== 'calling' && res(r as number[]));
    worker.on('error', rej);
  });
  for (const word of [w, w2]) {
    const parked = Atomics.waitAsync(i32, (word >> 2) + 1, 0);
    if (parked.async) await parked.value;
  }
  const failed = new Promise((res) => s.m.once('cpuerror', res));
  Atomics.store(i32, w >> 2, 1);
  Atomics.notify(i32, w >> 2);
  await failed;
  const stopped = s.m.stop();
  Atomics.store(i32, w2 >> 2, 1); // cpu0 answers its call, then stops
  Atomics.notify(i32, w2 >> 2);
  await stopped;
  assert.deepEqual(await mainCall, [0]);
  assert.deepEqual((await result)[0], ESHUTDOWN, 'the worker is not left sleeping on a message nobody will answer');
  await exited;
  s.words.free(w);
  s.words.free(w2);
  s.done();
});
