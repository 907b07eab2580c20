/**
 * Bench suite `mp`: the sockbuf ring between two workers against
 * postMessage and a ringbuf.js-style copying SPSC ring (same bytes, same
 * run); domsg round trip against postMessage ping-pong; messages/s into one
 * port with 1..ncpus senders.
 *
 * This module is also the workers' entry (workerData.mpBench names the role)
 * and the machine's handler module (register()).
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { isMainThread, MessageChannel, parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { Arena } from '../vm/arena.js';
import { Uma } from '../uma/uma.js';
import { M_NOWAIT } from '../uma/flags.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_LEN, M_NEXT, MT_DATA, MCLBYTES } from '../kern/mbuf/layout.js';
import { SB_CAP, SBS_CANTRCVMORE, SockBufs, sockbufZone } from '../kern/socket/sockbuf.js';
import { Machine } from '../kern/lwkt/machine.js';
import { attachMachine } from '../kern/lwkt/user.js';
import { MSG_F_WAITOK, SPIN_US_DEFAULT, type MachineInfo } from '../kern/lwkt/msgport.js';
import type { ProtocolThread } from '../kern/lwkt/protothread.js';
import { compared, measureRate, median, type BenchOptions, type BenchResult, type Suite } from './harness.js';

const SELF = new URL(import.meta.url);
const CMD_NOP = 300;
const CMD_COUNT = 301;

/** Handler module side: a no-op request and a counter of handled NOPs. */
export function register(td: ProtocolThread): void {
  let n = 0;
  td.register(CMD_NOP, 'bench nop', () => {
    n++;
    return 0;
  });
  td.register(CMD_COUNT, 'bench count', (_t, msg) => {
    td.ctx.setArg(msg, 0, n);
    return 0;
  });
}

interface RoleData {
  mpBench: string;
  sab?: SharedArrayBuffer;
  sb?: number;
  size: number;
  ms: number;
  ctl: SharedArrayBuffer;
  port?: MessagePort;
  info?: MachineInfo;
}

const CTL_GO = 0;
const CTL_STOP = 1;
const CTL_COUNT = 2;
/** Items the consumer has handled so far (stored once per batch), sampled per round. */
const CTL_PROGRESS = 3;
/** Workers that finished their setup (waitGo counts itself in). */
const CTL_READY = 4;
const CTL_BYTES = 32;
/** Rounds per streaming case: the median round is reported (the machine is shared and noisy). */
const ROUNDS = 5;

function spawn(data: RoleData, transfer: MessagePort[] = []): Promise<number> {
  return new Promise((res, rej) => {
    const w = new Worker(SELF, { workerData: data, transferList: transfer });
    let out = 0;
    w.on('message', (m: number) => (out = m));
    w.on('error', rej);
    w.on('exit', () => res(out));
  });
}

/** Start both sides, let them run `ms`, stop, return items the consumer counted. */
async function pair(a: RoleData, b: RoleData, ctl: Int32Array, transferA: MessagePort[] = [], transferB: MessagePort[] = []): Promise<[number, number]> {
  const pa = spawn(a, transferA);
  const pb = spawn(b, transferB);
  await new Promise((r) => setTimeout(r, 150));
  Atomics.store(ctl, CTL_GO, 1);
  Atomics.notify(ctl, CTL_GO);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, a.ms));
  Atomics.store(ctl, CTL_STOP, 1);
  const dt = (performance.now() - t0) / 1000;
  await Promise.all([pa, pb]);
  return [Atomics.load(ctl, CTL_COUNT), dt];
}

/**
 * Like pair, but samples the consumer's progress word `idx` every ms/ROUNDS
 * and returns the median rate of the rounds (items/s).
 */
async function pairRate(a: RoleData, b: RoleData, ctl: Int32Array, idx: number, transferA: MessagePort[] = [], transferB: MessagePort[] = []): Promise<number> {
  const pa = spawn(a, transferA);
  const pb = spawn(b, transferB);
  const rate = await roundsRate(ctl, idx, a.ms, 2);
  await Promise.all([pa, pb]);
  return rate;
}

/**
 * Wait until `ready` workers are set up (pools built), start them, sample
 * progress word `idx` every ms/ROUNDS, stop them; the median round's rate.
 */
async function roundsRate(ctl: Int32Array, idx: number, ms: number, ready: number): Promise<number> {
  for (let i = 0; i < 600 && Atomics.load(ctl, CTL_READY) < ready; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  Atomics.store(ctl, CTL_GO, 1);
  Atomics.notify(ctl, CTL_GO);
  const rates: number[] = [];
  let t = performance.now();
  let c = Atomics.load(ctl, idx);
  for (let r = 0; r < ROUNDS; r++) {
    await new Promise((res) => setTimeout(res, ms / ROUNDS));
    const t1 = performance.now();
    const c1 = Atomics.load(ctl, idx);
    rates.push((c1 - c) / ((t1 - t) / 1000));
    t = t1;
    c = c1;
  }
  Atomics.store(ctl, CTL_STOP, 1);
  return median(rates);
}

function waitGo(ctl: Int32Array): void {
  Atomics.add(ctl, CTL_READY, 1);
  while (Atomics.load(ctl, CTL_GO) === 0) Atomics.wait(ctl, CTL_GO, 0, 10);
}

// ---------------------------------------------------------------- worker roles

/**
 * Ring geometry of the ring cases: 2048 slots (a 32 KiB record), kern.ipc.maxsockbuf raised to
 * 8 MiB (FreeBSD's TCP autotuning goes to 2..16 MiB). A deep ring matters on
 * a loaded machine: when the two workers are not running at the same time,
 * each time slice moves at most one ring's worth.
 */
const RING_SLOTS = 2048;
const RING_MAXSOCKBUF = 8 << 20;

/** Chains per publication / take in the ring roles (the batch API). */
const BATCH = 64;
/** Empty polls before a side sleeps (both rings use the same policy). */
const SPINS = 256;

/**
 * The start of every sockbuf ring role, before its clock starts: this
 * worker's view of the control words, and of the arena as a CPU of its
 * own (UMA, mbufs, the sockbuf layer). Runs once per worker, off the
 * measured loop.
 */
function attachSbRole(d: RoleData): { ctl: Int32Array; uma: Uma; mb: Mbufs; sbs: SockBufs; i32: Int32Array } {
  const ctl = new Int32Array(d.ctl);
  const arena = Arena.attach(d.sab!);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const mb = Mbufs.attach(uma);
  return { ctl, uma, mb, sbs: new SockBufs(mb), i32: arena.i32 };
}

/** A chain of `size` bytes in clusters, lengths set (contents untouched). */
function buildChain(mb: Mbufs, i32: Int32Array, size: number): number {
  let head = 0;
  let left = size;
  while (left > 0) {
    const m = mb.m_getcl(M_NOWAIT, MT_DATA, 0);
    if (m === 0) throw new Error('bench: out of clusters');
    i32[(m + M_LEN) >> 2] = Math.min(MCLBYTES, left);
    left -= MCLBYTES;
    i32[(m + M_NEXT) >> 2] = head;
    head = m;
  }
  return head;
}

/**
 * Ring producer moving pre-built chains: a pool of one chain per slot is
 * built before the clock starts and re-appended round robin. The chain put
 * in at position t was last used at t - cap, which the consumer has taken
 * (the pool is larger than what the slot and byte limits let be in flight,
 * and sbspace never overstates the room), and the consumer never
 * frees or changes a chain, so the pool is safe to reuse. This measures the
 * ring alone: allocation is its own case.
 */
function sbProducer(d: RoleData): void {
  const { ctl, uma, mb, sbs, i32 } = attachSbRole(d);
  const sb = d.sb!;
  // More chains than can be in flight by either limit (slots or bytes).
  const cap = Math.min(i32[(sb >> 2) + SB_CAP], Math.floor(sbs.hiwat(sb) / d.size) + 1);
  const pool = new Int32Array(cap);
  const lens = new Int32Array(cap).fill(d.size);
  for (let i = 0; i < cap; i++) pool[i] = buildChain(mb, i32, d.size);
  let next = 0;
  let idle = 0;
  waitGo(ctl);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    let n = Math.min(BATCH, Math.floor(sbs.sbspace(sb) / d.size), cap - next);
    if (n > 0) n = sbs.sbappendv(sb, pool, n, next, lens);
    if (n > 0) {
      next += n;
      if (next === cap) next = 0;
      idle = 0;
    } else if (++idle > SPINS) {
      sbs.sbwaitWrite(sb, d.size, 1);
      idle = 0;
    }
  }
  sbs.sbmarkeof(sb);
  // The consumer has exited when CTL_COUNT is set; then the pool is ours again.
  while (Atomics.load(ctl, CTL_COUNT) === 0) Atomics.wait(ctl, CTL_COUNT, 0, 5);
  for (let i = 0; i < cap; i++) mb.m_freem(pool[i]);
  uma.flushCpuCaches();
}

/** Ring consumer: takes batches of chain handles; counts them, leaves them to the producer's pool. */
function sbConsumer(d: RoleData): void {
  const { ctl, sbs } = attachSbRole(d);
  const sb = d.sb!;
  const got = new Int32Array(BATCH);
  let n = 0;
  let idle = 0;
  waitGo(ctl);
  for (;;) {
    const k = sbs.sbtakev(sb, got, BATCH);
    if (k !== 0) {
      n += k;
      Atomics.store(ctl, CTL_PROGRESS, n);
      idle = 0;
      continue;
    }
    if ((sbs.state(sb) & SBS_CANTRCVMORE) !== 0 && sbs.sbavail(sb) === 0) break;
    if (++idle > SPINS) {
      sbs.sbwaitRead(sb, 1);
      idle = 0;
    }
  }
  Atomics.store(ctl, CTL_COUNT, Math.max(1, n));
  Atomics.notify(ctl, CTL_COUNT);
}

/** End to end: the producer allocates each chain, the consumer frees it (sbappendstream / sbtake). */
function sbAllocProducer(d: RoleData): void {
  const { ctl, uma, mb, sbs, i32 } = attachSbRole(d);
  const sb = d.sb!;
  let idle = 0;
  waitGo(ctl);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    // One sbspace per batch (it reads the consumer's line), then stage and publish once.
    const n = Math.min(BATCH, Math.floor(sbs.sbspace(sb) / d.size));
    if (n === 0) {
      if (++idle > SPINS) {
        sbs.sbwaitWrite(sb, d.size, 1);
        idle = 0;
      }
      continue;
    }
    idle = 0;
    for (let k = 0; k < n; k++) {
      const m = buildChain(mb, i32, d.size);
      if (!sbs.sbstage(sb, m, d.size)) {
        mb.m_freem(m);
        break;
      }
    }
    sbs.sbpublish(sb);
  }
  sbs.sbmarkeof(sb);
  uma.flushCpuCaches();
}

function sbFreeConsumer(d: RoleData): void {
  const { ctl, uma, mb, sbs } = attachSbRole(d);
  const sb = d.sb!;
  const got = new Int32Array(BATCH);
  let n = 0;
  let idle = 0;
  waitGo(ctl);
  for (;;) {
    const k = sbs.sbtakev(sb, got, BATCH);
    if (k !== 0) {
      for (let j = 0; j < k; j++) mb.m_freem(got[j]);
      n += k;
      Atomics.store(ctl, CTL_PROGRESS, n);
      idle = 0;
      continue;
    }
    if ((sbs.state(sb) & SBS_CANTRCVMORE) !== 0 && sbs.sbavail(sb) === 0) break;
    if (++idle > SPINS) {
      sbs.sbwaitRead(sb, 1);
      idle = 0;
    }
  }
  uma.flushCpuCaches();
  Atomics.store(ctl, CTL_COUNT, n);
}

function pmProducer(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  const buf = new Uint8Array(d.size);
  waitGo(ctl);
  // Bound the queue like a socket buffer would: stay at most 256 messages ahead.
  let sent = 0;
  const acked = new Int32Array(d.ctl);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    if (sent - Atomics.load(acked, CTL_COUNT) > 256) continue;
    d.port!.postMessage(buf);
    sent++;
  }
  d.port!.postMessage(null);
}

function pmConsumer(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  d.port!.on('message', (m: Uint8Array | null) => {
    if (m === null) d.port!.close();
    else Atomics.add(ctl, CTL_COUNT, 1);
  });
  Atomics.add(ctl, CTL_READY, 1);
}

/** ringbuf.js-style SPSC byte ring: [read, write] indices then data; copies in and out. */
const RB_CAP = 1 << 20;
function rbProducer(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  const idx = new Int32Array(d.sab!, 0, 2);
  const data = new Uint8Array(d.sab!, 8, RB_CAP);
  const src = new Uint8Array(d.size);
  let idle = 0;
  waitGo(ctl);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    const w = Atomics.load(idx, 1);
    const r = Atomics.load(idx, 0);
    if (RB_CAP - ((w - r) >>> 0) < d.size) {
      if (++idle > SPINS) {
        Atomics.wait(idx, 0, r, 1);
        idle = 0;
      }
      continue;
    }
    idle = 0;
    let off = w & (RB_CAP - 1);
    let done = 0;
    while (done < d.size) {
      const k = Math.min(d.size - done, RB_CAP - off);
      data.set(src.subarray(done, done + k), off);
      done += k;
      off = 0;
    }
    Atomics.store(idx, 1, (w + d.size) | 0);
    Atomics.notify(idx, 1);
  }
}

function rbConsumer(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  const idx = new Int32Array(d.sab!, 0, 2);
  const data = new Uint8Array(d.sab!, 8, RB_CAP);
  const dst = new Uint8Array(d.size);
  let n = 0;
  let idle = 0;
  waitGo(ctl);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    const r = Atomics.load(idx, 0);
    const w = Atomics.load(idx, 1);
    if (((w - r) >>> 0) < d.size) {
      if (++idle > SPINS) {
        Atomics.wait(idx, 1, w, 1);
        idle = 0;
      }
      continue;
    }
    idle = 0;
    let off = r & (RB_CAP - 1);
    let done = 0;
    while (done < d.size) {
      const k = Math.min(d.size - done, RB_CAP - off);
      dst.set(data.subarray(off, off + k), done);
      done += k;
      off = 0;
    }
    Atomics.store(idx, 0, (r + d.size) | 0);
    Atomics.notify(idx, 0);
    n++;
    Atomics.store(ctl, CTL_PROGRESS, n);
  }
  Atomics.store(ctl, CTL_COUNT, n);
}

function domsgClient(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  const ctx = attachMachine(d.info!);
  waitGo(ctl);
  let n = 0;
  const msg = ctx.allocmsg(CMD_NOP);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    ctx.domsg(0, msg);
    n++;
    Atomics.store(ctl, CTL_PROGRESS, n);
  }
  ctx.freemsg(msg);
  Atomics.add(ctl, CTL_COUNT, n);
}

function sender(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  const ctx = attachMachine(d.info!);
  waitGo(ctl);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    for (let i = 0; i < 64; i++) {
      const m = ctx.allocmsg(CMD_NOP);
      if (m === 0 || !ctx.sendmsg(0, m, MSG_F_WAITOK)) {
        if (m !== 0) ctx.freemsg(m);
        break;
      }
    }
  }
  ctx.uma.flushCpuCaches();
}

function pingPong(d: RoleData, first: boolean): void {
  const ctl = new Int32Array(d.ctl);
  let n = 0;
  d.port!.on('message', (v: number) => {
    if (v < 0 || Atomics.load(ctl, CTL_STOP) !== 0) {
      if (first) Atomics.store(ctl, CTL_COUNT, n);
      if (v >= 0) d.port!.postMessage(-1);
      d.port!.close();
      return;
    }
    n++;
    if (first) Atomics.store(ctl, CTL_PROGRESS, n);
    d.port!.postMessage(v + 1);
  });
  if (first) {
    waitGo(ctl);
    d.port!.postMessage(0);
  } else Atomics.add(ctl, CTL_READY, 1);
}

if (!isMainThread && (workerData as RoleData | null)?.mpBench !== undefined) {
  const d = workerData as RoleData;
  const roles: Record<string, () => void> = {
    sbProducer: () => sbProducer(d),
    sbConsumer: () => sbConsumer(d),
    sbAllocProducer: () => sbAllocProducer(d),
    sbFreeConsumer: () => sbFreeConsumer(d),
    pmProducer: () => pmProducer(d),
    pmConsumer: () => pmConsumer(d),
    rbProducer: () => rbProducer(d),
    rbConsumer: () => rbConsumer(d),
    domsgClient: () => domsgClient(d),
    sender: () => sender(d),
    ping: () => pingPong(d, true),
    pong: () => pingPong(d, false),
  };
  roles[d.mpBench]();
  void parentPort;
}

// ---------------------------------------------------------------- cases

/** The ring moving pre-built chains vs postMessage and a copying ring (same bytes, same run). */
export async function ringCase(size: number, ms: number, slots = RING_SLOTS): Promise<BenchResult[]> {
  const uma = Uma.create({ size: 128 << 20, ncpus: 8 });
  uma.logger = () => {};
  const mb = Mbufs.create(uma);
  const sbs = new SockBufs(mb, sockbufZone(uma, slots));
  sbs.maxsockbuf = RING_MAXSOCKBUF;
  const sb = sbs.sbcreate(Math.min(sbs.maxsockbuf, size * slots));
  let ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  const ring = await pairRate({ mpBench: 'sbProducer', sab: uma.arena.sab, sb, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, { mpBench: 'sbConsumer', sab: uma.arena.sab, sb, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, ctl, CTL_PROGRESS);
  sbs.sbdestroy(sb);

  ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  const ch = new MessageChannel();
  const pmRate = await pairRate({ mpBench: 'pmProducer', size, ms, ctl: ctl.buffer as SharedArrayBuffer, port: ch.port1 }, { mpBench: 'pmConsumer', size, ms, ctl: ctl.buffer as SharedArrayBuffer, port: ch.port2 }, ctl, CTL_COUNT, [ch.port1], [ch.port2]);

  ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  const rsab = new SharedArrayBuffer(8 + RB_CAP);
  const rbRate = await pairRate({ mpBench: 'rbProducer', sab: rsab, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, { mpBench: 'rbConsumer', sab: rsab, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, ctl, CTL_PROGRESS);
  const label = size === 1500 ? '1500 B' : `${size >> 10} KiB`;
  const gbit = (r: number): number => (r * size * 8) / 1e9;
  return [
    compared('mp', `sockbuf ring, ${label} chains`, 'chains/s', ring, 'postMessage', pmRate, { note: `${gbit(ring).toFixed(1)} Gbit/s vs ${gbit(pmRate).toFixed(2)} Gbit/s; zero-copy (bytes not touched), pre-built chains, batches of ${BATCH}, median of ${ROUNDS} rounds` }),
    compared('mp', `sockbuf ring, ${label} chains (vs copying ring)`, 'chains/s', ring, 'ringbuf.js-style copy', rbRate, { note: `${gbit(ring).toFixed(1)} Gbit/s vs ${gbit(rbRate).toFixed(2)} Gbit/s` }),
  ];
}

/**
 * Chain allocation on its own (one thread, per-CPU cache hits): build a
 * chain of `size` bytes from clusters and free it, as a producer and a
 * consumer each do once per chain in the end-to-end case.
 */
function allocCase(size: number, opts: BenchOptions): BenchResult {
  const uma = Uma.create({ size: 32 << 20, ncpus: 2 });
  uma.logger = () => {};
  uma.arena.registerCpu();
  const mb = Mbufs.create(uma);
  const i32 = uma.arena.i32;
  const rate = measureRate((n) => {
    for (let i = 0; i < n; i++) mb.m_freem(buildChain(mb, i32, size));
  }, opts);
  const label = size === 1500 ? '1500 B' : `${size >> 10} KiB`;
  return { suite: 'mp', case: `chain alloc+free (m_getcl/m_freem), ${label}`, unit: 'chains/s', value: rate, note: `${((1e9 / rate) | 0)} ns per chain, ${Math.ceil(size / MCLBYTES)} cluster(s)` };
}

/** End to end: allocate, append, take, free (two workers), for comparison with the ring alone. */
export async function ringAllocCase(size: number, ms: number): Promise<BenchResult> {
  const uma = Uma.create({ size: 128 << 20, ncpus: 8 });
  uma.logger = () => {};
  const mb = Mbufs.create(uma);
  const sbs = new SockBufs(mb);
  const sb = sbs.sbcreate(Math.min(sbs.maxsockbuf, size * 256));
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  const rate = await pairRate({ mpBench: 'sbAllocProducer', sab: uma.arena.sab, sb, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, { mpBench: 'sbFreeConsumer', sab: uma.arena.sab, sb, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, ctl, CTL_PROGRESS);
  sbs.sbdestroy(sb);
  const label = size === 1500 ? '1500 B' : `${size >> 10} KiB`;
  return { suite: 'mp', case: `sockbuf ring + alloc/free, ${label} chains`, unit: 'chains/s', value: rate, note: `${((rate * size * 8) / 1e9).toFixed(1)} Gbit/s end to end` };
}

export async function domsgCase(ms: number, spinUs = 50): Promise<BenchResult> {
  const m = await Machine.start({ ncpus: 1, handlers: [fileURLToPath(SELF)], arenaSize: 32 << 20, spinUs });
  m.uma.logger = () => {};
  let ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  const client = spawn({ mpBench: 'domsgClient', size: 0, ms, ctl: ctl.buffer as SharedArrayBuffer, info: m.info() });
  const rate = await roundsRate(ctl, CTL_PROGRESS, ms, 1);
  await client;
  await m.stop();
  ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  const ch = new MessageChannel();
  const pmRate = await pairRate({ mpBench: 'ping', size: 0, ms, ctl: ctl.buffer as SharedArrayBuffer, port: ch.port1 }, { mpBench: 'pong', size: 0, ms, ctl: ctl.buffer as SharedArrayBuffer, port: ch.port2 }, ctl, CTL_PROGRESS, [ch.port1], [ch.port2]);
  const rtt = 1e6 / Math.max(1, rate);
  const pmRtt = 1e6 / Math.max(1, pmRate);
  return compared('mp', `domsg round trip (worker -> CPU), spin ${spinUs} us`, 'us', rtt, 'postMessage ping-pong', pmRtt, { note: `lower is better; kern.mp.spin_us=${spinUs}, median of ${ROUNDS} rounds` });
}

async function sendersCase(k: number, ms: number): Promise<BenchResult> {
  const m = await Machine.start({ ncpus: 1, handlers: [fileURLToPath(SELF)], arenaSize: 64 << 20, spinUs: 0 });
  m.uma.logger = () => {};
  const ctl = new Int32Array(new SharedArrayBuffer(CTL_BYTES));
  const ws = Array.from({ length: k }, () => spawn({ mpBench: 'sender', size: 0, ms, ctl: ctl.buffer as SharedArrayBuffer, info: m.info() }));
  await new Promise((r) => setTimeout(r, 150));
  const [, c0] = await m.call(0, CMD_COUNT, [], 1);
  Atomics.store(ctl, CTL_GO, 1);
  Atomics.notify(ctl, CTL_GO);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const [, c1] = await m.call(0, CMD_COUNT, [], 1);
  const dt = (performance.now() - t0) / 1000;
  Atomics.store(ctl, CTL_STOP, 1);
  await Promise.all(ws);
  await m.stop();
  return { suite: 'mp', case: `sendmsg into one port, ${k} sender(s)`, unit: 'msgs/s', value: (c1 - c0) / dt, workers: k };
}

export const run: Suite = async (opts: BenchOptions) => {
  const ms = opts.quick ? 300 : 1500;
  const out: BenchResult[] = [];
  out.push(...(await ringCase(1500, ms)));
  out.push(...(await ringCase(65536, ms)));
  out.push(allocCase(1500, opts));
  out.push(allocCase(65536, opts));
  out.push(await ringAllocCase(1500, ms));
  // Spinning pays only when both threads have a core of their own; on an
  // oversubscribed machine it burns the slice the other side needs. Both
  // settings are reported.
  out.push(await domsgCase(ms, 0));
  out.push(await domsgCase(ms, SPIN_US_DEFAULT));
  const max = Math.min(availableParallelism(), 4);
  for (let k = 1; k <= max; k *= 2) out.push(await sendersCase(k, ms));
  return out;
};
