/**
 * Handler module of the lwkt tests (clock, cargo, failures, stop order),
 * loaded in every CPU: callouts that record when they fire and hop to the
 * next CPU, an mbuf sink whose messages carry their chain (cargo), a flood
 * of such messages, a hold that parks a CPU on an arena word, a JS timer
 * left behind, and a callout that throws. Needs the mbuf zones (Mbufs.create
 * in the main thread first).
 */
import type { ProtocolThread } from '../../kern/lwkt/protothread.js';
import { MBUF_ARG0 } from '../../kern/lwkt/protothread.js';
import { EJUSTRETURN } from '../../kern/errno.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { MT_DATA } from '../../kern/mbuf/layout.js';
import { bootSecret, ipRandomId } from '../../kern/prng.js';

export const L_ARM = 0x6101;
export const L_FIRED = 0x6102;
export const L_NOW = 0x6103;
export const L_SINK = 0x6104;
export const L_FLOOD = 0x6105;
export const L_HOLD = 0x6106;
export const L_TIMER = 0x6107;
export const L_THROW_CALLOUT = 0x6108;
export const L_DEFER = 0x6109;

export function register(td: ProtocolThread): void {
  registerSecret(td);
  const ctx = td.ctx;
  const mb = Mbufs.attach(ctx.uma);
  const fired: { tag: number; at: number }[] = [];
  let sunk = 0;
  const deferred: number[] = [];

  /** L_ARM(ms, tag, hops, hopMs): fire after ms, then arm the same on the next CPU hops times. */
  td.register(L_ARM, 'arm', (_td, msg) => {
    const ms = ctx.arg(msg, 0);
    const tag = ctx.arg(msg, 1);
    const hops = ctx.arg(msg, 2);
    const hopMs = ctx.arg(msg, 3);
    const c = td.callouts.callout();
    c.reset(ms, () => {
      fired.push({ tag, at: td.clock.now() });
      if (hops <= 0) return;
      const next = ctx.allocmsg(L_ARM);
      for (const [i, v] of [hopMs, tag + 1, hops - 1, hopMs].entries()) ctx.setArg(next, i, v);
      if (!ctx.sendmsg((td.cpu + 1) % ctx.ncpus, next)) ctx.freemsg(next);
    });
    return 0;
  });
  /** L_FIRED(i) -> count, tag of fire i, its time in microseconds. */
  td.register(L_FIRED, 'fired', (_td, msg) => {
    const f = fired[ctx.arg(msg, 0)];
    ctx.setArg(msg, 0, fired.length);
    ctx.setArg(msg, 1, f?.tag ?? -1);
    ctx.setArg(msg, 2, f === undefined ? -1 : Math.round(f.at * 1000));
    return 0;
  });
  td.register(L_NOW, 'now', (_td, msg) => {
    ctx.setArg(msg, 0, Math.round(td.clock.now() * 1000));
    return 0;
  });
  /** L_SINK(mbuf): takes and frees the chain (arg 0 is cargo). */
  td.register(
    L_SINK,
    'sink',
    (_td, msg) => {
      mb.m_freem(ctx.arg(msg, 0));
      sunk++;
      return 0;
    },
    undefined,
    MBUF_ARG0,
  );
  /** L_FLOOD(dst, n) -> sent: n chains to dst's sink, until its port is full (refused ones dropped with dropmsg). */
  td.register(L_FLOOD, 'flood', (_td, msg) => {
    const dst = ctx.arg(msg, 0);
    const n = ctx.arg(msg, 1);
    let sent = 0;
    for (let i = 0; i < n; i++) {
      const m = mb.m_gethdr(M_NOWAIT, MT_DATA);
      if (m === 0) break;
      const s = ctx.allocmsg(L_SINK);
      if (s === 0) {
        mb.m_freem(m);
        break;
      }
      ctx.setArg(s, 0, m);
      if (!ctx.sendmsg(dst, s)) {
        ctx.dropmsg(s); // frees the chain too
        break;
      }
      sent++;
    }
    ctx.setArg(msg, 0, sent);
    ctx.setArg(msg, 1, sunk);
    return 0;
  });
  /** L_HOLD(word, die): say "parked" in word+4, park this CPU until the word is nonzero; then exit the worker if die. */
  td.register(L_HOLD, 'hold', (_td, msg) => {
    const w = ctx.arg(msg, 0) >> 2;
    const die = ctx.arg(msg, 1) !== 0;
    Atomics.store(ctx.i32, w + 1, 1);
    Atomics.notify(ctx.i32, w + 1);
    for (let i = 0; i < 2000 && Atomics.load(ctx.i32, w) === 0; i++) Atomics.wait(ctx.i32, w, 0, 10);
    if (die) process.exit(3);
    return 0;
  });
  /** L_TIMER(ms): a JS timer this handler leaves behind (it keeps the event loop alive). */
  td.register(L_TIMER, 'timer', (_td, msg) => {
    setTimeout(() => {}, ctx.arg(msg, 0));
    return 0;
  });
  td.register(L_THROW_CALLOUT, 'throw callout', (_td, msg) => {
    td.callouts.callout().reset(ctx.arg(msg, 0), () => {
      throw new Error('callout boom');
    });
    return 0;
  });
  /** L_DEFER: kept until shutdown (answered by the shutdown hook). */
  td.register(L_DEFER, 'defer', (_td, msg) => {
    deferred.push(msg);
    return EJUSTRETURN;
  });
  td.shutdownHooks.push(() => {
    for (const m of deferred.splice(0)) ctx.replymsg(m, 0);
    mb.drainPacketCache();
  });
}

export const L_SECRET = 0x610a;
export const L_IPIDS = 0x610b;

/** Second module entry, loaded by the prng tests: the CPU's view of the boot secret and its IP IDs. */
export function registerSecret(td: ProtocolThread): void {
  td.register(L_SECRET, 'secret', (_td, msg) => {
    const k = bootSecret(td.ctx.uma.arena).k;
    for (let i = 0; i < 4; i++) td.ctx.setArg(msg, i, k[i]);
    return 0;
  });
  td.register(L_IPIDS, 'ip ids', (_td, msg) => {
    for (let i = 0; i < 8; i++) td.ctx.setArg(msg, i, ipRandomId(td.ctx.uma.arena));
    return 0;
  });
}
