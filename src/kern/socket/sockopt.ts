/**
 * Socket options by message (the seed's so_pr_ctloutput change): the caller
 * copies the value into the message before sending (early copy-in) and
 * copies the answer out after the reply (late copy-out); the handler, on the
 * PCB's CPU, reads and writes only the message payload and checks sizes
 * itself: a value of the wrong size is EINVAL, never a partial read.
 */
import { EINVAL, ENOBUFS, ENOPROTOOPT } from '../errno.js';
import type { MsgContext } from '../lwkt/msgport.js';
import type { SockBufs } from './sockbuf.js';
import { A_X, A_Y, A_Z, SOPT_SET } from './protosw.js';

export const SOL_SOCKET = 0xffff;
export const SO_LINGER = 0x0080;
export const SO_SNDBUF = 0x1001;
export const SO_RCVBUF = 0x1002;
export const SO_RCVLOWAT = 0x1004;

/** Option state a PCB keeps for the socket level. */
export interface SockLevelOpts {
  rcv: number;
  sndbuf: number;
  lingerOn: number;
  lingerSecs: number;
}

/** The option request carried by a PRU_CTLOUTPUT message. */
export function soptOf(ctx: MsgContext, msg: number): { dir: number; level: number; name: number; size: number; val: number } {
  return { dir: ctx.arg(msg, A_X), level: ctx.arg(msg, A_Y), name: ctx.arg(msg, A_Z), size: ctx.payloadLength(msg), val: ctx.payload(msg) };
}

/** Read the int value of a set request (sooptcopyin from the message); -1 size mismatch. */
function intValue(ctx: MsgContext, msg: number): number | null {
  if (ctx.payloadLength(msg) !== 4) return null;
  return ctx.i32[ctx.payload(msg) >> 2];
}

/** Write an int answer of a get request, checking the caller's buffer size. */
function putInt(ctx: MsgContext, msg: number, v: number): number {
  if (ctx.payloadLength(msg) !== 4) return EINVAL;
  ctx.i32[ctx.payload(msg) >> 2] = v;
  return 0;
}

/**
 * SOL_SOCKET options, run on the owning CPU (sosetopt/sogetopt). Returns
 * an errno. No lock; does not sleep.
 */
export function solevelCtloutput(ctx: MsgContext, sbs: SockBufs, msg: number, o: SockLevelOpts): number {
  const { dir, name } = soptOf(ctx, msg);
  const set = dir === SOPT_SET;
  switch (name) {
    case SO_RCVBUF:
    case SO_SNDBUF: {
      if (!set) return putInt(ctx, msg, name === SO_RCVBUF ? sbs.hiwat(o.rcv) : o.sndbuf);
      const v = intValue(ctx, msg);
      if (v === null || v <= 0) return EINVAL;
      if (name === SO_SNDBUF) {
        if (v > sbs.maxsockbuf) return ENOBUFS;
        o.sndbuf = v;
        return 0;
      }
      return sbs.sbreserve(o.rcv, v) ? 0 : ENOBUFS;
    }
    case SO_RCVLOWAT: {
      if (!set) return putInt(ctx, msg, sbs.lowat(o.rcv));
      const v = intValue(ctx, msg);
      if (v === null || v < 0) return EINVAL;
      sbs.setLowat(o.rcv, v);
      return 0;
    }
    case SO_LINGER: {
      // struct linger { int l_onoff; int l_linger; }: exactly 8 bytes.
      const p = ctx.payload(msg) >> 2;
      if (ctx.payloadLength(msg) !== 8) return EINVAL;
      if (set) {
        o.lingerOn = ctx.i32[p];
        o.lingerSecs = ctx.i32[p + 1];
      } else {
        ctx.i32[p] = o.lingerOn;
        ctx.i32[p + 1] = o.lingerSecs;
      }
      return 0;
    }
    default:
      return ENOPROTOOPT;
  }
}
