// The MP core's tunables as sysctls (kern.mp.spin_us, kern.mp.idle_block_us,
// kern.ipc.maxsockbuf): registered once, range-checked, shared through the
// arena and read live; domsg stays correct whether the waiter spins, blocks
// or sleeps asynchronously.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { testUma, leakCheck } from '../helpers.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { registerMpSysctls } from '../../kern/lwkt/sysctl.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { SockBufs, MAXSOCKBUF_DEFAULT } from '../../kern/socket/sockbuf.js';
import { registerSocketSysctls } from '../../kern/socket/sysctl.js';
import { sysctlFor } from '../../kern/sysctl/vm.js';
import { SYSCTL_EINVAL } from '../../kern/sysctl/sysctl.js';
import { CMD_ECHO, TEST_ZONE } from '../workers/mp-handlers.js';

const HANDLERS = fileURLToPath(new URL('../workers/mp-handlers.js', import.meta.url));
const SENDER = new URL('../workers/mp-sender.js', import.meta.url);

function sender(workerData: unknown): Promise<{ refused: number; wrong: number }> {
  return new Promise((res, rej) => {
    const w = new Worker(SENDER, { workerData });
    let out: { refused: number; wrong: number } | undefined;
    w.on('message', (m) => {
      if (m !== 'started') out = m;
    });
    w.on('error', rej);
    w.on('exit', (code) => (code === 0 && out ? res(out) : rej(new Error(`sender exited ${code}`))));
  });
}

test('kern.mp.* sysctls: registered once, range-checked, read live by every thread; domsg correct in every wait mode', async () => {
  const uma = testUma({ ncpus: 16, size: 32 << 20 });
  const done = leakCheck(uma);
  uma.zcreate(TEST_ZONE, { size: 64 });
  const m = await Machine.start({ uma, ncpus: 2, handlers: [HANDLERS], spinUs: 7 });
  try {
    const t = m.sysctl();
    assert.equal(m.sysctl(), t, 'one tree; registering twice is a no-op');
    registerMpSysctls(t, uma.arena);
    assert.equal(t.get('kern.mp.spin_us'), 7, 'Machine.start({spinUs}) set the shared word');
    assert.equal(t.get('kern.mp.idle_block_us'), 1000);
    assert.throws(() => t.set('kern.mp.spin_us', -1), { code: SYSCTL_EINVAL });
    assert.throws(() => t.set('kern.mp.idle_block_us', 2_000_000), { code: SYSCTL_EINVAL });
    // Every mode: long spins (the reply is caught spinning), no spin and no
    // blocking (futex sleep with MSGF_WAITING; CPUs idle in waitAsync), blocking CPUs.
    for (const [spin, block] of [
      [200, 1000],
      [0, 0],
      [0, 5000],
    ]) {
      t.set('kern.mp.spin_us', spin);
      t.set('kern.mp.idle_block_us', block);
      assert.equal(m.ctx.spinUs, spin, 'the main thread reads the shared word');
      const rs = await Promise.all([1, 2].map((s) => sender({ info: m.info(), sender: s, count: 50, cpus: [0, 1], echoes: 200 })));
      for (const r of rs) assert.deepEqual(r, { refused: 0, wrong: 0 }, `spin ${spin} block ${block}`);
      const [err, v] = await m.call(1, CMD_ECHO, [41], 1);
      assert.deepEqual([err, v], [0, 42]);
    }
  } finally {
    await m.stop();
  }
  assert.equal(m.failures.length, 0);
  done();
});

test('kern.ipc.maxsockbuf sysctl bounds sbreserve in every thread', () => {
  const uma = testUma({ size: 32 << 20 });
  const done = leakCheck(uma);
  const mb = Mbufs.create(uma);
  const sbs = new SockBufs(mb);
  const t = sysctlFor(uma);
  registerSocketSysctls(t, uma.arena);
  registerSocketSysctls(t, uma.arena); // no-op
  assert.equal(t.get('kern.ipc.maxsockbuf'), MAXSOCKBUF_DEFAULT);
  assert.throws(() => t.set('kern.ipc.maxsockbuf', 100), { code: SYSCTL_EINVAL });
  t.set('kern.ipc.maxsockbuf', 65536);
  assert.equal(sbs.maxsockbuf, 65536);
  assert.equal(new SockBufs(mb).maxsockbuf, 65536, 'another SockBufs reads the same word');
  const sb = sbs.sbcreate(65536);
  assert.equal(sbs.sbreserve(sb, 65537), false);
  assert.throws(() => sbs.sbcreate(100_000), { code: 'ERR_SLABNET_INVALID_ARG' });
  t.set('kern.ipc.maxsockbuf', 1 << 20);
  assert.equal(sbs.sbreserve(sb, 100_000), true);
  sbs.sbdestroy(sb);
  done();
});
