// Socket buffers: the single-thread semantics (records, addresses, OOB mark,
// sbdrop, sbreserve) and the cross-CPU producer/consumer ring.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { testUma, mbufLeakCheck } from '../helpers.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { SockBufs, SBS_CANTRCVMORE } from '../../kern/socket/sockbuf.js';
import { M_EOR, MT_DATA, M_FLAGS } from '../../kern/mbuf/layout.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { m_length } from '../../kern/mbuf/ops.js';

function setup() {
  const uma = testUma({ size: 128 << 20 });
  const mb = Mbufs.create(uma);
  return { uma, mb, sbs: new SockBufs(mb), done: mbufLeakCheck(uma, mb) };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

test('stream append/read/drop keep order and free every mbuf', () => {
  const { sbs, done } = setup();
  const sb = sbs.sbcreate(8192);
  const a = bytes(300, 1);
  const b = bytes(5000, 2);
  assert.ok(sbs.sbappendstream(sb, sbs.mchain(a)));
  assert.ok(sbs.sbappendstream(sb, sbs.mchain(b)));
  assert.equal(sbs.sbavail(sb), 5300);
  assert.equal(sbs.sbspace(sb), 8192 - 5300);
  const out = new Uint8Array(100);
  assert.equal(sbs.sbread(sb, out), 100);
  assert.deepEqual(out, a.subarray(0, 100));
  sbs.sbdrop(sb, 250); // crosses into the second chain
  const rest = new Uint8Array(10000);
  const n = sbs.sbread(sb, rest);
  assert.equal(n, 4950);
  assert.deepEqual(rest.subarray(0, 4950), b.subarray(50));
  assert.throws(() => sbs.sbdrop(sb, 1), /sbdrop/);
  sbs.sbdestroy(sb);
  done();
});

test('sbappendaddr keeps datagram boundaries and the source address (MT_SONAME)', () => {
  const { sbs, mb, done } = setup();
  const sb = sbs.sbcreate(4096);
  for (let i = 0; i < 3; i++) assert.ok(sbs.sbappendaddr(sb, Uint8Array.of(10, 0, 0, i, 0x1f, 0x90), sbs.mchain(bytes(100 + i, i))));
  // Too big for the space left: refused, nothing consumed from the caller.
  const big = sbs.mchain(bytes(4000, 9));
  assert.equal(sbs.sbappendaddr(sb, Uint8Array.of(1), big), false);
  mb.m_freem(big);
  for (let i = 0; i < 3; i++) {
    assert.ok(sbs.sbrecordstart(sb));
    const r = sbs.sbrecvrecord(sb)!;
    assert.deepEqual([...r.addr!], [10, 0, 0, i, 0x1f, 0x90]);
    assert.equal(r.len, 100 + i);
    assert.equal(m_length(mb, r.m), 100 + i);
    mb.m_freem(r.m);
  }
  assert.equal(sbs.sbrecvrecord(sb), null);
  sbs.sbdestroy(sb);
  done();
});

test('sbappendrecord marks records and M_EOR; reads stop at the OOB mark', () => {
  const { sbs, mb, done } = setup();
  const sb = sbs.sbcreate(4096);
  const m = sbs.mchain(bytes(50, 3));
  mb.setFlags(m, mb.m_flags(m) | M_EOR);
  assert.ok(sbs.sbappendrecord(sb, m));
  assert.ok(sbs.sbrecordstart(sb));
  sbs.sbsetoobmark(sb, 10); // urgent byte 10 bytes ahead of what is queued: at stream offset 60
  assert.ok(sbs.sbappendstream(sb, sbs.mchain(bytes(40, 4))));
  const out = new Uint8Array(100);
  assert.equal(sbs.sbatmark(sb), false);
  assert.equal(sbs.sbread(sb, out), 60, 'read stops at the mark');
  assert.equal(sbs.sbatmark(sb), true);
  assert.equal(sbs.sbread(sb, out), 30);
  sbs.sbmarkeof(sb);
  assert.ok((sbs.state(sb) & SBS_CANTRCVMORE) !== 0);
  sbs.sbdestroy(sb);
  void MT_DATA;
  void M_FLAGS;
  void M_NOWAIT;
  done();
});

test('sbreserve is bounded by kern.ipc.maxsockbuf', () => {
  const { sbs, done } = setup();
  const sb = sbs.sbcreate(1024);
  assert.equal(sbs.sbreserve(sb, sbs.maxsockbuf + 1), false);
  assert.equal(sbs.sbreserve(sb, 65536), true);
  assert.equal(sbs.hiwat(sb), 65536);
  sbs.maxsockbuf = 32768;
  assert.equal(sbs.sbreserve(sb, 65536), false);
  assert.throws(() => sbs.sbcreate(65536), /maxsockbuf/);
  sbs.maxsockbuf = 2 * 1024 * 1024;
  assert.equal(sbs.sysctlNodes()[0].name, 'kern.ipc.maxsockbuf');
  sbs.sbdestroy(sb);
  done();
});

function peer(data: object): Promise<{ violations: number; chains: number }> {
  return new Promise((res, rej) => {
    const w = new Worker(new URL('../workers/mp-sbpeer.js', import.meta.url), { workerData: data });
    let out: { violations: number; chains: number } | undefined;
    w.on('message', (m) => (out = m));
    w.on('error', rej);
    w.on('exit', (c) => (c === 0 && out ? res(out) : rej(new Error(`peer exited ${c}`))));
  });
}

test('batch mode across CPUs: staged runs published once (sbstage/sbpublish), sbtakev mixed with sbread; byte-exact, cc bounds hold, nothing leaks', async () => {
  const { uma, sbs, done } = setup();
  const sb = sbs.sbcreate(256 * 1024);
  const pattern = new Uint8Array(new SharedArrayBuffer(1 << 20));
  pattern.set(randomBytes(1 << 20));
  const common = { sab: uma.arena.sab, sb, total: 40 << 20, pattern, maxChain: 65536, batch: true };
  const [p, c] = await Promise.all([peer({ ...common, role: 'producer', seed: 5 }), peer({ ...common, role: 'consumer', seed: 13 })]);
  assert.equal(p.violations, 0);
  assert.equal(c.violations, 0);
  assert.ok(p.chains > 0 && c.chains > 0);
  assert.equal(sbs.sbavail(sb), 0);
  sbs.sbdestroy(sb);
  done();
});

for (const [name, maxChain, total] of [
  ['small chains', 1500, 48 << 20],
  ['64 KiB chains', 65536, 160 << 20],
] as const) {
  test(`producer and consumer on different CPUs move ${total >> 20} MiB (${name}) byte-exact, cc bounds hold, nothing leaks`, async () => {
    const { uma, sbs, done } = setup();
    const sb = sbs.sbcreate(256 * 1024);
    const pattern = new Uint8Array(new SharedArrayBuffer(1 << 20));
    pattern.set(randomBytes(1 << 20));
    const common = { sab: uma.arena.sab, sb, total, pattern, maxChain };
    const [p, c] = await Promise.all([peer({ ...common, role: 'producer', seed: 7 }), peer({ ...common, role: 'consumer', seed: 11 })]);
    assert.equal(p.violations, 0);
    assert.equal(c.violations, 0);
    assert.ok(p.chains > 0 && c.chains > 0);
    assert.equal(sbs.sbavail(sb), 0);
    sbs.sbdestroy(sb);
    done();
  });
}
