// The one socket record (layout.ts / socketvar.ts), the send side of the
// sockbuf as TCP reads it (sbsndptr / sbcopyat at an offset without
// consuming, sbdrop on ACK), the accept queue and its limits, and the
// SOL_SOCKET options over the loop protocol on real CPUs (listen refused by
// a datagram protocol, FreeBSD's sb_max_adj, flag options, SO_TYPE, SO_ERROR).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { testUma, mbufLeakCheck, leakCheck } from '../helpers.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN } from '../../kern/mbuf/layout.js';
import { SbPtr, SockBufs, sockbufZone } from '../../kern/socket/sockbuf.js';
import { SocketRecords } from '../../kern/socket/socketvar.js';
import { SO_CPU, SO_NCPUS, SO_RCV, SO_SND, SS_ISCONNECTED, SS_CANTRCVMORE } from '../../kern/socket/layout.js';
import { AcceptQueues, acceptQueueMax, SOMAXCONN } from '../../kern/socket/soqueue.js';
import { SOCK_DGRAM, SOCK_STREAM } from '../../kern/socket/protosw.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { socketHandlers } from '../../kern/socket/handlers.js';
import { SocketLayer } from '../../kern/socket/socket.js';
import { IPPROTO_LOOP } from '../../kern/socket/loopdgram.js';
import { SOL_SOCKET, SO_ERROR, SO_RCVBUF, SO_REUSEADDR, SO_REUSEPORT, SO_SNDBUF, SO_TYPE } from '../../kern/socket/sockopt.js';
import { tunableIndex } from '../../kern/sysctl/tunables.js';

function setup() {
  const uma = testUma({ size: 64 << 20 });
  const mb = Mbufs.create(uma);
  const sbs = new SockBufs(mb);
  return { uma, mb, sbs, sor: new SocketRecords(sbs), done: mbufLeakCheck(uma, mb) };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);

test('socket record: rings, send buffer, state and option bits, so_error taken once; sofree frees all', () => {
  const { sor, sbs, done } = setup();
  const so = sor.soalloc({ type: SOCK_STREAM, proto: 6, rings: 3, cpu: 2, rcvspace: 5000, sndspace: 7000 });
  assert.ok(sor.valid(so));
  const w = so >> 2;
  assert.equal(sor.i32[w + SO_NCPUS], 3);
  assert.equal(sor.i32[w + SO_CPU], 2);
  for (let r = 0; r < 3; r++) assert.equal(sbs.hiwat(sor.i32[w + SO_RCV + r]), 5000);
  assert.equal(sor.i32[w + SO_RCV + 3], 0);
  assert.equal(sbs.hiwat(sor.i32[w + SO_SND]), 7000);
  assert.equal(sor.rcvFor(so, 1), sor.rcv(so, 1), 'a replicated socket: the CPU\'s own ring');
  sor.soSetState(so, SS_ISCONNECTED | SS_CANTRCVMORE);
  sor.soClearState(so, SS_CANTRCVMORE);
  assert.equal(sor.state(so), SS_ISCONNECTED);
  sor.soSetOptions(so, SO_REUSEADDR | SO_REUSEPORT, true);
  sor.soSetOptions(so, SO_REUSEADDR, false);
  assert.equal(sor.options(so), SO_REUSEPORT);
  sor.soSetError(so, 61);
  sor.soSetError(so, 54); // a later error overwrites, as so_error
  assert.equal(sor.soPeekError(so), 54);
  assert.equal(sor.soTakeError(so), 54);
  assert.equal(sor.soTakeError(so), 0, 'read-and-clear');
  // Data still queued is freed with the record.
  assert.ok(sbs.sbappendstream(sor.snd(so), sbs.mchain(bytes(3000, 1))));
  const one = sor.soalloc({ type: SOCK_DGRAM, proto: 17, rcvspace: 100 });
  assert.equal(sor.rcvFor(one, 5), sor.rcv(one, 0), 'a one-ring socket: ring 0 whatever the CPU');
  sor.sofree(so);
  sor.sofree(one);
  assert.ok(!sor.valid(so));
  assert.throws(() => sor.soalloc({ type: SOCK_DGRAM, proto: 17, rings: 0, rcvspace: 1 }), /receive rings/);
  done();
});

test('sbsndptr / sbcopyat read the send buffer at any offset without consuming; sbdrop (the ACK) moves them', () => {
  const { sbs, mb, done } = setup();
  const sb = sbs.sbcreate(1 << 20);
  // Chains of several mbufs each (MLEN-sized and cluster pieces), as sosend makes them.
  const parts = [bytes(10, 1), bytes(3000, 2), bytes(1, 3), bytes(5000, 4), bytes(200, 5)];
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    assert.ok(sbs.sbappendstream(sb, sbs.mchain(p)));
    all.set(p, o);
    o += p.length;
  }
  const ptr = new SbPtr();
  const check = (base: number) => {
    for (const off of [0, 1, 9, 10, 11, 3009, 3010, 3011, 5000, 8210, all.length - base - 1]) {
      if (off >= all.length - base) continue;
      assert.ok(sbs.sbsndptr(sb, off, ptr), `off ${off}`);
      assert.equal(mb.u8[mb.i32[(ptr.m + M_DATA) >> 2] + ptr.moff], all[base + off], `byte at ${base}+${off}`);
      assert.ok(ptr.moff < mb.i32[(ptr.m + M_LEN) >> 2]);
    }
    assert.equal(sbs.sbsndptr(sb, all.length - base, ptr), false, 'past the end');
  };
  check(0);
  const seg = new Uint8Array(1460);
  assert.equal(sbs.sbcopyat(sb, 2000, 1460, seg), 1460);
  assert.deepEqual(seg, all.subarray(2000, 3460));
  assert.equal(sbs.sbavail(sb), all.length, 'nothing consumed');
  // The ACK: drop from the front, partly into a chain; offsets are from the new front.
  sbs.sbdrop(sb, 1500);
  check(1500);
  assert.equal(sbs.sbcopyat(sb, 0, 1460, seg), 1460);
  assert.deepEqual(seg, all.subarray(1500, 2960));
  // Forward walk (the cached slot) then backward (from the head again).
  assert.equal(sbs.sbcopyat(sb, 5000, 1460, seg), 1460);
  assert.deepEqual(seg, all.subarray(6500, 7960));
  assert.equal(sbs.sbcopyat(sb, 100, 1460, seg), 1460);
  assert.deepEqual(seg, all.subarray(1600, 3060));
  const tail = new Uint8Array(5000);
  assert.equal(sbs.sbcopyat(sb, all.length - 1500 - 100, 5000, tail), 100, 'short at the end');
  assert.deepEqual(tail.subarray(0, 100), all.subarray(all.length - 100));
  sbs.sbdrop(sb, all.length - 1500);
  assert.equal(sbs.sbsndptr(sb, 0, ptr), false);
  sbs.sbdestroy(sb);
  done();
});

test('property: sbcopyat after any appends and drops equals the model stream', () => {
  const { sbs, done } = setup();
  fc.assert(
    fc.property(
      fc.array(fc.oneof(fc.record({ add: fc.integer({ min: 0, max: 5000 }) }), fc.record({ drop: fc.integer({ min: 0, max: 6000 }) }), fc.record({ off: fc.nat(20000), len: fc.integer({ min: 1, max: 3000 }) })), { maxLength: 30 }),
      (ops) => {
        const sb = sbs.sbcreate(1 << 20);
        let model: number[] = [];
        let seed = 0;
        try {
          for (const op of ops) {
            if ('add' in op) {
              const b = bytes(op.add, seed++);
              if (op.add > 0) assert.ok(sbs.sbappendstream(sb, sbs.mchain(b)));
              model = model.concat([...b]);
            } else if ('drop' in op) {
              const n = Math.min(op.drop, model.length);
              sbs.sbdrop(sb, n);
              model = model.slice(n);
            } else {
              const out = new Uint8Array(op.len);
              const n = sbs.sbcopyat(sb, op.off, op.len, out);
              const want = model.slice(op.off, op.off + op.len);
              assert.equal(n, want.length);
              assert.deepEqual([...out.subarray(0, n)], want);
              assert.equal(sbs.sbavail(sb), model.length);
            }
          }
        } finally {
          sbs.sbdestroy(sb);
        }
      },
    ),
    { numRuns: 150 },
  );
  done();
});

test('accept queue: backlog capped by kern.ipc.soacceptqueue, 3/2 of it may wait, overflows counted, FIFO, destroy aborts the rest', () => {
  const uma = testUma({ size: 32 << 20 });
  const done = leakCheck(uma);
  const q = new AcceptQueues(uma);
  assert.equal(q.somaxconn, SOMAXCONN);
  assert.equal(q.qlimitFor(-1), SOMAXCONN);
  assert.equal(q.qlimitFor(1 << 20), SOMAXCONN);
  assert.equal(q.qlimitFor(5), 5);
  const h = q.create(4);
  assert.equal(q.qlimit(h), 4);
  const max = acceptQueueMax(4);
  assert.equal(max, 7);
  for (let i = 1; i <= max; i++) assert.ok(q.insert(h, i * 4), `connection ${i}`);
  assert.equal(q.insert(h, 999 * 4), false, 'over 3/2 of the backlog');
  assert.equal(q.insert(h, 998 * 4), false);
  assert.equal(q.overflows(h), 2);
  assert.equal(q.qlen(h), max);
  assert.equal(q.take(h), 4);
  assert.equal(q.take(h), 8);
  assert.ok(q.insert(h, 100 * 4), 'room again after accept');
  const aborted: number[] = [];
  q.destroy(h, (so) => aborted.push(so));
  assert.deepEqual(aborted, [12, 16, 20, 24, 28, 400]);
  // A backlog of 0 still lets one wait (qlen > 0 is the refusal).
  const z = q.create(0);
  assert.ok(q.insert(z, 4));
  assert.equal(q.insert(z, 8), false);
  assert.equal(q.take(z), 4);
  assert.equal(q.take(z), 0);
  // The sysctl caps later listens; setBacklog changes a live queue.
  Atomics.store(uma.arena.i32, tunableIndex(uma.arena, 'kern.ipc.soacceptqueue', SOMAXCONN), 2);
  assert.equal(q.qlimitFor(100), 2);
  q.setBacklog(z, 100);
  assert.equal(q.qlimit(z), 2);
  Atomics.store(uma.arena.i32, tunableIndex(uma.arena, 'kern.ipc.soacceptqueue', SOMAXCONN), SOMAXCONN);
  q.destroy(z, () => assert.fail('empty'));
  const one = q.create(1);
  assert.throws(() => q.insert(one, 0), /socket 0/);
  q.destroy(one, () => {});
  done();
});

async function machine() {
  const uma = testUma({ ncpus: 16, size: 64 << 20 });
  const done = leakCheck(uma);
  const mb = Mbufs.create(uma);
  sockbufZone(uma);
  const m = await Machine.start({ uma, ncpus: 1, handlers: [socketHandlers], spinUs: 0 });
  const layer = new SocketLayer(m.ctx, mb);
  return {
    layer,
    async finish() {
      await layer.closeAll();
      await m.stop();
      mb.drainPacketCache();
      done();
    },
  };
}

test('socket layer: listen on a datagram protocol is EOPNOTSUPP and leaves no queue; SOL_SOCKET options with FreeBSD rules', async () => {
  const { layer, finish } = await machine();
  const [a] = await layer.socketpair(IPPROTO_LOOP);
  await assert.rejects(a.listen(5), { code: 'ENOTSUP', errno: 45, syscall: 'listen' });
  assert.equal(a.acceptQueue, 0);
  assert.throws(() => a.tryAccept(), { code: 'EINVAL', syscall: 'accept' });
  // sb_max_adj: 2 MiB * 2048 / 2304.
  const adj = Math.floor((2 * 1024 * 1024 * 2048) / (256 + 2048));
  await a.setsockoptInt(SOL_SOCKET, SO_RCVBUF, adj);
  assert.equal(await a.getsockoptInt(SOL_SOCKET, SO_RCVBUF), adj, 'kept exactly (no rounding, no doubling)');
  await assert.rejects(a.setsockoptInt(SOL_SOCKET, SO_RCVBUF, adj + 1), { code: 'ENOBUFS' });
  await assert.rejects(a.setsockoptInt(SOL_SOCKET, SO_SNDBUF, 0), { code: 'EINVAL' });
  await a.setsockoptInt(SOL_SOCKET, SO_SNDBUF, 4096);
  assert.equal(await a.getsockoptInt(SOL_SOCKET, SO_SNDBUF), 4096);
  // Flag options: get answers the bit itself; the record's so_options word follows.
  assert.equal(await a.getsockoptInt(SOL_SOCKET, SO_REUSEADDR), 0);
  await a.setsockoptInt(SOL_SOCKET, SO_REUSEADDR, 1);
  assert.equal(await a.getsockoptInt(SOL_SOCKET, SO_REUSEADDR), SO_REUSEADDR);
  assert.equal(layer.sor.options(a.so) & SO_REUSEADDR, SO_REUSEADDR);
  await a.setsockoptInt(SOL_SOCKET, SO_REUSEADDR, 0);
  assert.equal(layer.sor.options(a.so) & SO_REUSEADDR, 0);
  assert.equal(await a.getsockoptInt(SOL_SOCKET, SO_TYPE), SOCK_DGRAM);
  await assert.rejects(a.setsockoptInt(SOL_SOCKET, SO_TYPE, 1), { code: 'ENOPROTOOPT' });
  layer.sor.soSetError(a.so, 65);
  assert.equal(await a.getsockoptInt(SOL_SOCKET, SO_ERROR), 65);
  assert.equal(await a.getsockoptInt(SOL_SOCKET, SO_ERROR), 0, 'SO_ERROR clears it');
  await finish();
});

test('accept queue across threads: one producer, two consumers claiming with CAS; every connection taken exactly once', async () => {
  const { Worker } = await import('node:worker_threads');
  const uma = testUma({ size: 32 << 20 });
  const done = leakCheck(uma);
  const aq = new AcceptQueues(uma);
  const q = aq.create(8);
  const total = 20000;
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const outs = [0, 1].map(() => new Int32Array(new SharedArrayBuffer(4 * (total + 1))));
  const url = new URL('../workers/accq-peer.js', import.meta.url);
  const run = (data: object) =>
    new Promise<{ refused: number }>((res, rej) => {
      const w = new Worker(url, { workerData: { sab: uma.arena.sab, q, total, ...data } });
      w.once('message', res);
      w.once('error', rej);
    });
  const [prod] = await Promise.all([run({ role: 'producer' }), ...outs.map((out) => run({ role: 'consumer', out, done: counter }))]);
  const seen = new Uint8Array(total + 1);
  let taken = 0;
  for (const out of outs) {
    const n = out[out.length - 1];
    taken += n;
    for (let i = 0; i < n; i++) {
      const k = out[i] / 4;
      assert.ok(Number.isInteger(k) && k >= 1 && k <= total, `bad handle ${out[i]}`);
      assert.equal(seen[k], 0, `connection ${k} taken twice`);
      seen[k] = 1;
    }
  }
  assert.equal(taken, total);
  assert.equal(aq.overflows(q), prod.refused, 'every refusal counted');
  assert.equal(aq.qlen(q), 0);
  aq.destroy(q, () => assert.fail('nothing left'));
  done();
});
