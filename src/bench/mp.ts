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
import { Arena } from '../arena/arena.js';
import { Uma } from '../uma/uma.js';
import { M_NOWAIT } from '../uma/flags.js';
import { Mbufs } from '../mbuf/mbuf.js';
import { M_LEN, M_NEXT, MT_DATA, MCLBYTES } from '../mbuf/layout.js';
import { SockBufs } from '../socket/sockbuf.js';
import { Machine } from '../mp/machine.js';
import { attachMachine } from '../mp/user.js';
import { MSG_F_WAITOK, type MachineInfo } from '../mp/msgport.js';
import type { ProtocolThread } from '../mp/protothread.js';
import { compared, type BenchOptions, type BenchResult, type Suite } from './harness.js';

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

function waitGo(ctl: Int32Array): void {
  while (Atomics.load(ctl, CTL_GO) === 0) Atomics.wait(ctl, CTL_GO, 0, 10);
}

// ---------------------------------------------------------------- worker roles

function sbProducer(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  const arena = Arena.attach(d.sab!);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const mb = Mbufs.attach(uma);
  const sbs = new SockBufs(mb);
  const i32 = arena.i32;
  const nclust = Math.ceil(d.size / MCLBYTES);
  waitGo(ctl);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    if (sbs.sbspace(d.sb!) < d.size) {
      sbs.sbwaitWrite(d.sb!, d.size, 5);
      continue;
    }
    let head = 0;
    let left = d.size;
    for (let i = 0; i < nclust; i++) {
      const m = mb.m_getcl(M_NOWAIT, MT_DATA, 0);
      i32[(m + M_LEN) >> 2] = Math.min(MCLBYTES, left);
      left -= MCLBYTES;
      i32[(m + M_NEXT) >> 2] = head;
      head = m;
    }
    sbs.sbappendstream(d.sb!, head);
  }
  sbs.sbmarkeof(d.sb!);
}

function sbConsumer(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  const arena = Arena.attach(d.sab!);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const mb = Mbufs.attach(uma);
  const sbs = new SockBufs(mb);
  let n = 0;
  waitGo(ctl);
  for (;;) {
    const m = sbs.sbtake(d.sb!);
    if (m !== 0) {
      mb.m_freem(m);
      n++;
      continue;
    }
    if ((sbs.state(d.sb!) & 1) !== 0 && sbs.sbavail(d.sb!) === 0) break;
    sbs.sbwaitRead(d.sb!, 5);
  }
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
}

/** ringbuf.js-style SPSC byte ring: [read, write] indices then data; copies in and out. */
const RB_CAP = 1 << 20;
function rbProducer(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  const idx = new Int32Array(d.sab!, 0, 2);
  const data = new Uint8Array(d.sab!, 8, RB_CAP);
  const src = new Uint8Array(d.size);
  waitGo(ctl);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    const w = Atomics.load(idx, 1);
    const r = Atomics.load(idx, 0);
    if (RB_CAP - ((w - r) >>> 0) < d.size) continue;
    let off = w % RB_CAP;
    let done = 0;
    while (done < d.size) {
      const k = Math.min(d.size - done, RB_CAP - off);
      data.set(src.subarray(done, done + k), off);
      done += k;
      off = 0;
    }
    Atomics.store(idx, 1, (w + d.size) | 0);
  }
}

function rbConsumer(d: RoleData): void {
  const ctl = new Int32Array(d.ctl);
  const idx = new Int32Array(d.sab!, 0, 2);
  const data = new Uint8Array(d.sab!, 8, RB_CAP);
  const dst = new Uint8Array(d.size);
  let n = 0;
  waitGo(ctl);
  while (Atomics.load(ctl, CTL_STOP) === 0) {
    const r = Atomics.load(idx, 0);
    const w = Atomics.load(idx, 1);
    if (((w - r) >>> 0) < d.size) continue;
    let off = r % RB_CAP;
    let done = 0;
    while (done < d.size) {
      const k = Math.min(d.size - done, RB_CAP - off);
      dst.set(data.subarray(off, off + k), done);
      done += k;
      off = 0;
    }
    Atomics.store(idx, 0, (r + d.size) | 0);
    n++;
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
    d.port!.postMessage(v + 1);
  });
  if (first) {
    waitGo(ctl);
    d.port!.postMessage(0);
  }
}

if (!isMainThread && (workerData as RoleData | null)?.mpBench !== undefined) {
  const d = workerData as RoleData;
  const roles: Record<string, () => void> = {
    sbProducer: () => sbProducer(d),
    sbConsumer: () => sbConsumer(d),
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

async function ringCase(size: number, ms: number): Promise<BenchResult[]> {
  const uma = Uma.create({ size: 128 << 20, ncpus: 8 });
  uma.logger = () => {};
  const mb = Mbufs.create(uma);
  const sbs = new SockBufs(mb);
  const sb = sbs.sbcreate(Math.max(1 << 20, size * 16));
  let ctl = new Int32Array(new SharedArrayBuffer(16));
  const [chains, dt] = await pair({ mpBench: 'sbProducer', sab: uma.arena.sab, sb, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, { mpBench: 'sbConsumer', sab: uma.arena.sab, sb, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, ctl);
  sbs.sbdestroy(sb);
  const ring = chains / dt;

  ctl = new Int32Array(new SharedArrayBuffer(16));
  const ch = new MessageChannel();
  const [pm, dt2] = await pair({ mpBench: 'pmProducer', size, ms, ctl: ctl.buffer as SharedArrayBuffer, port: ch.port1 }, { mpBench: 'pmConsumer', size, ms, ctl: ctl.buffer as SharedArrayBuffer, port: ch.port2 }, ctl, [ch.port1], [ch.port2]);
  const pmRate = pm / dt2;

  ctl = new Int32Array(new SharedArrayBuffer(16));
  const rsab = new SharedArrayBuffer(8 + RB_CAP);
  const [rb, dt3] = await pair({ mpBench: 'rbProducer', sab: rsab, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, { mpBench: 'rbConsumer', sab: rsab, size, ms, ctl: ctl.buffer as SharedArrayBuffer }, ctl);
  const rbRate = rb / dt3;
  const label = size === 1500 ? '1500 B' : `${size >> 10} KiB`;
  const gbit = (r: number): number => (r * size * 8) / 1e9;
  return [
    compared('mp', `sockbuf ring, ${label} chains`, 'chains/s', ring, 'postMessage', pmRate, { note: `${gbit(ring).toFixed(2)} Gbit/s vs ${gbit(pmRate).toFixed(2)} Gbit/s` }),
    compared('mp', `sockbuf ring, ${label} chains (vs copying ring)`, 'chains/s', ring, 'ringbuf.js-style copy', rbRate, { note: `${gbit(ring).toFixed(2)} Gbit/s vs ${gbit(rbRate).toFixed(2)} Gbit/s` }),
  ];
}

async function domsgCase(ms: number): Promise<BenchResult> {
  const m = await Machine.start({ ncpus: 1, handlers: [fileURLToPath(SELF)], arenaSize: 32 << 20, spinUs: 50 });
  m.uma.logger = () => {};
  let ctl = new Int32Array(new SharedArrayBuffer(16));
  const client = spawn({ mpBench: 'domsgClient', size: 0, ms, ctl: ctl.buffer as SharedArrayBuffer, info: m.info() });
  await new Promise((r) => setTimeout(r, 150));
  Atomics.store(ctl, CTL_GO, 1);
  Atomics.notify(ctl, CTL_GO);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  Atomics.store(ctl, CTL_STOP, 1);
  const dt = (performance.now() - t0) / 1000;
  await client;
  const n = Atomics.load(ctl, CTL_COUNT);
  await m.stop();
  ctl = new Int32Array(new SharedArrayBuffer(16));
  const ch = new MessageChannel();
  const [pp, dt2] = await pair({ mpBench: 'ping', size: 0, ms, ctl: ctl.buffer as SharedArrayBuffer, port: ch.port1 }, { mpBench: 'pong', size: 0, ms, ctl: ctl.buffer as SharedArrayBuffer, port: ch.port2 }, ctl, [ch.port1], [ch.port2]);
  const rtt = (dt * 1e6) / Math.max(1, n);
  const pmRtt = (dt2 * 1e6) / Math.max(1, pp);
  return compared('mp', 'domsg round trip (worker -> CPU)', 'us', rtt, 'postMessage ping-pong', pmRtt, { note: 'lower is better' });
}

async function sendersCase(k: number, ms: number): Promise<BenchResult> {
  const m = await Machine.start({ ncpus: 1, handlers: [fileURLToPath(SELF)], arenaSize: 64 << 20, spinUs: 0 });
  m.uma.logger = () => {};
  const ctl = new Int32Array(new SharedArrayBuffer(16));
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
  out.push(await domsgCase(ms));
  const max = Math.min(availableParallelism(), 4);
  for (let k = 1; k <= max; k *= 2) out.push(await sendersCase(k, ms));
  return out;
};
