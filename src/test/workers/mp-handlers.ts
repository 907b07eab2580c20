/**
 * Handler module the MP tests load in every CPU: echo, per-sender ordering
 * accounting, direct dispatch probe, a throwing command, callouts with a
 * deferred reply, and a command that holds zone items until shutdown.
 */
import type { ProtocolThread } from '../../kern/lwkt/protothread.js';
import { EJUSTRETURN, ESHUTDOWN } from '../../kern/errno.js';
import { M_NOWAIT } from '../../uma/flags.js';

export const CMD_ECHO = 100;
export const CMD_RECORD = 101;
export const CMD_STATS = 102;
export const CMD_SELF = 103;
export const CMD_THROW = 104;
export const CMD_CALLOUT = 105;
export const CMD_HOLD = 106;
export const CMD_FORWARD = 107;
export const CMD_BLOCK = 108;
export const CMD_KICK = 109;
/** CMD_LOOPHOOK(1 | 0): add or remove a poll hook that needs the event loop; replies with td.blocks. */
export const CMD_LOOPHOOK = 110;
export const TEST_ZONE = 'mp test items';

export function register(td: ProtocolThread): void {
  const ctx = td.ctx;
  let depth = 0;
  // Per sender: next expected sequence, messages seen, order violations.
  const expect = new Map<number, number>();
  const seen = new Map<number, number>();
  const bad = new Map<number, number>();
  const held: number[] = [];
  const heldMsgs: number[] = [];
  const zone = ctx.uma.zone(TEST_ZONE);

  td.register(CMD_ECHO, 'echo', (_td, msg) => {
    ctx.setArg(msg, 0, ctx.arg(msg, 0) + 1);
    ctx.setArg(msg, 1, depth);
    ctx.setArg(msg, 2, td.cpu);
    return 0;
  });
  td.register(CMD_RECORD, 'record', (_td, msg) => {
    const s = ctx.arg(msg, 0);
    const q = ctx.arg(msg, 1);
    const e = expect.get(s) ?? 0;
    if (q !== e) bad.set(s, (bad.get(s) ?? 0) + 1);
    expect.set(s, q + 1);
    seen.set(s, (seen.get(s) ?? 0) + 1);
    return 0;
  });
  td.register(CMD_STATS, 'stats', (_td, msg) => {
    const s = ctx.arg(msg, 0);
    ctx.setArg(msg, 0, seen.get(s) ?? 0);
    ctx.setArg(msg, 1, bad.get(s) ?? 0);
    ctx.setArg(msg, 2, expect.get(s) ?? 0);
    return 0;
  });
  td.register(CMD_SELF, 'self', (_td, msg) => {
    const inner = ctx.allocmsg(CMD_ECHO);
    ctx.setArg(inner, 0, 41);
    depth++;
    const handledBefore = td.handled;
    const err = ctx.domsg(td.cpu, inner);
    depth--;
    ctx.setArg(msg, 0, err);
    ctx.setArg(msg, 1, ctx.arg(inner, 0));
    ctx.setArg(msg, 2, ctx.arg(inner, 1)); // depth seen by the inner handler: 1 = ran directly
    ctx.setArg(msg, 3, td.handled - handledBefore);
    ctx.freemsg(inner);
    return 0;
  });
  td.register(CMD_THROW, 'throw', () => {
    throw new Error('handler boom');
  });
  // A native poll handle's callback, simulated by a timer: it marks work and
  // calls td.kick() while the CPU sleeps; the poll hook then answers, with
  // the microseconds from kick to the loop's pass.
  let kickMsg = 0;
  let kickedAt = 0;
  td.register(CMD_KICK, 'kick', (_td, msg) => {
    if (td.pollHooks.length === 0) {
      td.pollHooks.push(() => {
        if (kickMsg === 0 || kickedAt === 0) return 0;
        ctx.setArg(kickMsg, 0, Math.round((performance.now() - kickedAt) * 1000));
        ctx.replymsg(kickMsg, 0);
        kickMsg = 0;
        kickedAt = 0;
        return 1;
      });
    }
    kickMsg = msg;
    setTimeout(() => {
      kickedAt = performance.now();
      td.kick();
    }, ctx.arg(msg, 0));
    return EJUSTRETURN;
  });
  const loopHook = (): number => 0;
  td.register(CMD_LOOPHOOK, 'loop hook', (_td, msg) => {
    if (ctx.arg(msg, 0) === 1) td.addPollHook(loopHook, true);
    else if (ctx.arg(msg, 0) === 0) td.removePollHook(loopHook);
    ctx.setArg(msg, 0, td.blocks);
    return 0;
  });
  td.register(CMD_CALLOUT, 'callout', (_td, msg) => {
    const c = td.callouts.callout();
    const t0 = performance.now();
    const ms = ctx.arg(msg, 0);
    const stopped = td.callouts.callout();
    stopped.reset(ms, () => ctx.setArg(msg, 2, 1)); // stopped below: must never run
    c.reset(ms, () => {
      ctx.setArg(msg, 0, Math.round((performance.now() - t0) * 1000));
      ctx.replymsg(msg, 0);
    });
    ctx.setArg(msg, 2, 0);
    ctx.setArg(msg, 1, stopped.stop() ? 1 : 0);
    return EJUSTRETURN;
  });
  td.register(CMD_HOLD, 'hold', (_td, msg) => {
    const n = ctx.arg(msg, 0);
    for (let i = 0; i < n; i++) {
      const it = zone.alloc(M_NOWAIT);
      if (it !== 0) held.push(it);
    }
    if (ctx.arg(msg, 1) !== 0) {
      heldMsgs.push(msg);
      return EJUSTRETURN;
    }
    return 0;
  });
  // Forward an echo to another CPU with this CPU's port as reply port (async reply path).
  td.register(
    CMD_FORWARD,
    'forward',
    (_td, msg) => {
      const inner = ctx.allocmsg(CMD_ECHO);
      ctx.setArg(inner, 0, ctx.arg(msg, 1));
      ctx.setArg(inner, 5, msg);
      ctx.setArg(inner, 6, CMD_FORWARD);
      if (!ctx.sendmsg(ctx.arg(msg, 0), inner, 1, td.port, CMD_FORWARD)) {
        ctx.freemsg(inner);
        return ESHUTDOWN;
      }
      return EJUSTRETURN;
    },
    (_td, inner) => {
      const orig = ctx.arg(inner, 5);
      ctx.setArg(orig, 0, ctx.arg(inner, 0));
      ctx.setArg(orig, 1, ctx.arg(inner, 2));
      const err = ctx.error(inner);
      ctx.freemsg(inner);
      ctx.replymsg(orig, err);
    },
  );
  // Keep the CPU busy (blocked) for arg0 ms: lets a test fill the port.
  td.register(CMD_BLOCK, 'block', (_td, msg) => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ctx.arg(msg, 0));
    return 0;
  });
  td.shutdownHooks.push(() => {
    for (const it of held) zone.free(it);
    held.length = 0;
    for (const m of heldMsgs) ctx.replymsg(m, ESHUTDOWN);
    heldMsgs.length = 0;
  });
}
