// Message ports and the machine, with real CPU workers and user workers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { testUma, leakCheck } from '../helpers.js';
import { Machine, MachineError } from '../../kern/lwkt/machine.js';
import { EFAULT, EINVAL, ESHUTDOWN } from '../../kern/errno.js';
import { MSG_F_NOWAIT } from '../../kern/lwkt/msgport.js';
import { portDepth } from '../../kern/lwkt/port.js';
import { CMD_BLOCK, CMD_CALLOUT, CMD_KICK, CMD_LOOPHOOK, CMD_ECHO, CMD_FORWARD, CMD_HOLD, CMD_RECORD, CMD_SELF, CMD_STATS, CMD_THROW, TEST_ZONE } from '../workers/mp-handlers.js';
import { zoneStats } from '../../uma/stats.js';

const HANDLERS = fileURLToPath(new URL('../workers/mp-handlers.js', import.meta.url));
const SENDER = new URL('../workers/mp-sender.js', import.meta.url);

async function machine(ncpus: number, extra: { portCapacity?: number } = {}) {
  const uma = testUma({ ncpus: 16, size: 32 << 20 });
  const done = leakCheck(uma);
  const zone = uma.zcreate(TEST_ZONE, { size: 64 });
  const m = await Machine.start({ uma, ncpus, handlers: [HANDLERS], spinUs: 0, ...extra });
  return { uma, m, zone, done };
}

function runWorker(url: URL, workerData: unknown, onStart?: () => void): Promise<{ refused: number; wrong: number }> {
  return new Promise((res, rej) => {
    const w = new Worker(url, { workerData });
    let out: { refused: number; wrong: number } | undefined;
    w.on('message', (m) => {
      if (m === 'started') onStart?.();
      else out = m;
    });
    w.on('error', rej);
    w.on('exit', (code) => (code === 0 && out ? res(out) : rej(new Error(`sender exited ${code}`))));
  });
}

/** Start `n` WAITOK senders of `count` messages to CPUs 0 and 1; resolves once each is sending. */
async function startSenders(m: Machine, n: number, count: number): Promise<Promise<{ refused: number; wrong: number }>[]> {
  let started = 0;
  let senders: Promise<{ refused: number; wrong: number }>[] = [];
  await new Promise<void>((res) => {
    const on = () => {
      if (++started === n) res();
    };
    senders = Array.from({ length: n }, (_, s) => runWorker(SENDER, { info: m.info(), sender: s + 1, count, cpus: [0, 1], echoes: 0 }, on));
  });
  return senders;
}

test('start, echo on every CPU, stop leaves every zone where it was', async () => {
  const { m, done } = await machine(3);
  for (let c = 0; c < 3; c++) {
    const [err, v, depth, cpu] = await m.call(c, CMD_ECHO, [c * 10], 3);
    assert.deepEqual([err, v, depth, cpu], [0, c * 10 + 1, 0, c]);
  }
  const [err] = await m.call(0, 9999);
  assert.equal(err, EINVAL, 'unknown command is EINVAL');
  await m.stop();
  assert.equal(m.failures.length, 0);
  done();
});

test('many senders: per-sender order, no loss, no duplication; domsg replies reach their waiter', async () => {
  const { m, done } = await machine(2, { portCapacity: 16 });
  const senders = 4;
  const count = 2000;
  const results = await Promise.all(
    Array.from({ length: senders }, (_, s) => runWorker(SENDER, { info: m.info(), sender: s + 1, count, cpus: [0, 1], echoes: 300 })),
  );
  for (const r of results) assert.deepEqual(r, { refused: 0, wrong: 0 });
  for (let s = 1; s <= senders; s++) {
    for (const cpu of [0, 1]) {
      const [err, seen, bad, next] = await m.call(cpu, CMD_STATS, [s], 3);
      assert.deepEqual([err, seen, bad, next], [0, count, 0, count], `sender ${s} cpu ${cpu}`);
    }
  }
  await m.stop();
  done();
});

test('main thread: 3000 requests in flight on 2 CPUs through its one reply port; each reply reaches its own caller, one wait serves many', async () => {
  // A port of 16 cells: most sends wait for room (portPutWaitAsync) while replies flow back.
  const { m, done } = await machine(2, { portCapacity: 16 });
  const waits0 = m.ctx.replyWaits;
  const n = 3000;
  const replies = await Promise.all(Array.from({ length: n }, (_, i) => m.call(i % 2, CMD_ECHO, [i], 3)));
  for (let i = 0; i < n; i++) assert.deepEqual([replies[i][0], replies[i][1], replies[i][3]], [0, i + 1, i % 2], `request ${i}`);
  const waits = m.ctx.replyWaits - waits0;
  assert.ok(waits > 0 && waits < n / 2, `${waits} waits of the reply pump for ${n} replies`);
  await m.stop();
  done();
});

test('domsg to the current CPU runs the handler directly, not through the port', async () => {
  const { m, done } = await machine(2);
  const [err, innerErr, v, innerDepth, handled] = await m.call(1, CMD_SELF, [], 4);
  assert.deepEqual([err, innerErr, v, innerDepth, handled], [0, 0, 42, 1, 1]);
  await m.stop();
  done();
});

test('replies queued to a CPU reply port come back to the forwarding handler', async () => {
  const { m, done } = await machine(2);
  for (let i = 0; i < 50; i++) {
    const [err, v, cpu] = await m.call(0, CMD_FORWARD, [1, i], 2);
    assert.deepEqual([err, v, cpu], [0, i + 1, 1]);
  }
  await m.stop();
  done();
});

test('callouts: reset fires after its ticks, stop cancels, deferred reply', async () => {
  const { m, done } = await machine(1);
  const [err, us, stopped, ranStopped] = await m.call(0, CMD_CALLOUT, [25], 3);
  assert.equal(err, 0);
  assert.ok(us >= 24_000, `callout fired after ${us} us, wanted >= 25 ms (1 tick slack)`);
  assert.equal(stopped, 1);
  assert.equal(ranStopped, 0);
  await m.stop();
  done();
});

test('an idle CPU blocks in Atomics.wait, except while a poll hook needs the event loop (a TAP queue)', async () => {
  const { m, done } = await machine(1);
  const idleEchoes = async (): Promise<void> => {
    for (let i = 0; i < 5; i++) {
      await m.call(0, CMD_ECHO, [i], 1);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const blocks = async (op: number): Promise<number> => (await m.call(0, CMD_LOOPHOOK, [op], 1))[1];
  const b0 = await blocks(-1);
  await idleEchoes();
  const b1 = await blocks(1); // and adds the hook
  assert.ok(b1 > b0, `blocked ${b1 - b0} times while idle without such a hook`);
  await idleEchoes();
  const b2 = await blocks(0); // and removes it
  assert.equal(b2, b1, 'never blocked while the hook was there');
  await idleEchoes();
  assert.ok((await blocks(-1)) > b2, 'blocks again once it is gone');
  await m.stop();
  done();
});

// helper-9's report: kick() did nothing while the loop slept in waitAsync, so a
// TAP poll callback could not wake an idle CPU through it.
test('td.kick() from a callback wakes a sleeping CPU', async () => {
  const { m, done } = await machine(1);
  const reply = m.call(0, CMD_KICK, [30], 1);
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('kick did not wake the sleeping CPU within 3 s')), 3000).unref());
  try {
    const [err, us] = await Promise.race([reply, timeout]);
    assert.equal(err, 0);
    assert.ok(us < 1_000_000, `loop ran ${us} us after the kick`);
  } finally {
    await m.stop();
  }
  done();
});

test('a full port refuses NOWAIT sends (backpressure) and frees nothing it did not take', async () => {
  const { m, done } = await machine(1, { portCapacity: 8 });
  const block = m.call(0, CMD_BLOCK, [300]);
  while (portDepth(m.uma.arena.i32, m.port(0)) !== 0) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 20));
  let accepted = 0;
  let refused = 0;
  for (let i = 0; i < 20; i++) {
    const msg = m.ctx.allocmsg(CMD_ECHO);
    if (m.ctx.sendmsg(0, msg, MSG_F_NOWAIT)) accepted++;
    else {
      refused++;
      m.ctx.freemsg(msg);
    }
  }
  assert.equal(accepted, 8);
  assert.equal(refused, 12);
  assert.equal((await block)[0], 0);
  await m.stop();
  done();
});

test('stop under load: senders in flight, held items and deferred messages; every zone back', async () => {
  const { m, zone, done } = await machine(2, { portCapacity: 32 });
  const senders = await startSenders(m, 3, 100000);
  await m.call(0, CMD_HOLD, [500, 0]);
  const deferred = m.call(1, CMD_HOLD, [300, 1]);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(zoneStats(zone).used >= 800);
  await m.stop();
  const [derr] = await deferred;
  assert.equal(derr, ESHUTDOWN);
  const rs = await Promise.all(senders);
  assert.ok(rs.every((r) => r.wrong === 0));
  assert.equal(zoneStats(zone).used, 0);
  done();
});

// The rare "Invalid atomic access index" in a sender: a user worker checked
// alive(), slept for room in a full port, and put its message into a port
// that stop() had freed meanwhile. Stopped many times under WAITOK senders
// on tiny ports, at staggered moments, no sender may crash or leak.
test('stop under load, repeated: senders racing the free of ports and record never touch freed memory', async () => {
  for (let round = 0; round < 12; round++) {
    const { m, zone, done } = await machine(2, { portCapacity: 2 });
    const senders = await startSenders(m, 4, 1_000_000);
    await new Promise((r) => setTimeout(r, round % 4));
    await m.stop();
    const rs = await Promise.all(senders);
    assert.ok(rs.every((r) => r.wrong === 0 && r.refused > 0), 'every sender saw the stop as a refused send');
    assert.equal(zoneStats(zone).used, 0);
    done();
  }
});

test('debug mode: a throwing handler stops its CPU, reported with CPU id and handler name; the machine stops cleanly', async () => {
  const { m, done } = await machine(3);
  const failed = new Promise<MachineError>((res) => (m.onFailure = res));
  const emitted = new Promise<MachineError>((res) => m.once('cpuerror', res));
  const [err] = await m.call(2, CMD_THROW);
  assert.equal(err, EFAULT, 'the waiter is answered before the CPU dies');
  const f = await failed;
  assert.equal(await emitted, f);
  assert.equal(f.cpu, 2);
  assert.equal(f.code, 'ERR_SLABNET_CPU_FAILED');
  assert.equal(f.handler, 'handler "throw"');
  assert.equal(f.cmd, CMD_THROW);
  assert.match(f.message, /handler boom/);
  assert.deepEqual(m.stopReason, { kind: 'cpu', error: f });
  await m.stop();
  assert.equal(m.running, false);
  const [late] = await m.ctx.callAsync(0, CMD_ECHO, [1]);
  assert.equal(late, ESHUTDOWN);
  done();
});
