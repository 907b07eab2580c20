/**
 * Socket options by message (the seed's so_pr_ctloutput change): the caller
 * copies the value into the message before sending (early copy-in) and
 * copies the answer out after the reply (late copy-out); the handler, on the
 * PCB's CPU, reads and writes only the message payload and checks sizes
 * itself: a value of the wrong size is EINVAL, never a partial read.
 *
 * SOL_SOCKET options (sosetopt / sogetopt, FreeBSD semantics):
 * - flag options (SO_REUSEADDR, SO_REUSEPORT, SO_REUSEPORT_LB, SO_BROADCAST,
 *   SO_KEEPALIVE, SO_DONTROUTE): an int, nonzero sets the bit in so_options
 *   (the record's SO_OPTIONS word and the PCB's copy the protocol reads);
 *   get answers the bit's value itself (so_options & name), as FreeBSD.
 * - SO_RCVBUF / SO_SNDBUF: at least 1 (else EINVAL) and at most sb_max_adj
 *   (kern.ipc.maxsockbuf * MCLBYTES / (MSIZE + MCLBYTES): ENOBUFS above),
 *   kept exactly as given (FreeBSD does not round or double as Linux does);
 *   a low-water mark above the new size is lowered to it.
 * - SO_RCVLOWAT / SO_SNDLOWAT: clamped to 1..hiwat.
 * - SO_LINGER (struct linger, 8 bytes), SO_ERROR (read-and-clear so_error),
 *   SO_TYPE (read only).
 */
import { EINVAL, ENOBUFS, ENOPROTOOPT } from '../errno.js';
import type { MsgContext } from '../lwkt/msgport.js';
import type { SockBufs } from './sockbuf.js';
import { A_X, A_Y, A_Z, SOPT_SET } from './protosw.js';
import { SO_ERROR as SOW_ERROR, SO_OPTIONS as SOW_OPTIONS, SO_TYPE as SOW_TYPE } from './layout.js';

export const SOL_SOCKET = 0xffff;

/** so_options bits (sys/socket.h); each is also the option name that sets it. */
export const SO_DEBUG = 0x0001;
export const SO_ACCEPTCONN = 0x0002;
export const SO_REUSEADDR = 0x0004;
export const SO_KEEPALIVE = 0x0008;
export const SO_DONTROUTE = 0x0010;
export const SO_BROADCAST = 0x0020;
export const SO_LINGER = 0x0080;
export const SO_REUSEPORT = 0x0200;
export const SO_REUSEPORT_LB = 0x10000;

/** Valued options. */
export const SO_SNDBUF = 0x1001;
export const SO_RCVBUF = 0x1002;
export const SO_SNDLOWAT = 0x1003;
export const SO_RCVLOWAT = 0x1004;
export const SO_ERROR = 0x1007;
export const SO_TYPE = 0x1008;

/** Options that are one so_options bit set by an int. */
const FLAG_OPTIONS = SO_REUSEADDR | SO_REUSEPORT | SO_REUSEPORT_LB | SO_BROADCAST | SO_KEEPALIVE | SO_DONTROUTE | SO_DEBUG;
const isFlagOption = (name: number): boolean => name !== 0 && (name & FLAG_OPTIONS) === name && (name & (name - 1)) === 0;

/** Option state a PCB keeps for the socket level. */
export interface SockLevelOpts {
  /** The socket record (0: a PCB without one, e.g. a protocol test's). */
  so: number;
  /** This CPU's receive sockbuf of the socket. */
  rcv: number;
  /** so_snd's hiwat (for UDP the largest datagram, net.inet.udp.maxdgram by default). */
  sndbuf: number;
  sndlowat: number;
  /** This CPU's copy of so_options. */
  soOptions: number;
  lingerOn: number;
  lingerSecs: number;
}

/** The option request carried by a PRU_CTLOUTPUT message. */
export function soptOf(ctx: MsgContext, msg: number): { dir: number; level: number; name: number; size: number; val: number } {
  return { dir: ctx.arg(msg, A_X), level: ctx.arg(msg, A_Y), name: ctx.arg(msg, A_Z), size: ctx.payloadLength(msg), val: ctx.payload(msg) };
}

/** Read the int value of a set request (sooptcopyin from the message); null on a size mismatch. */
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
 * Set or clear so_options bit `bit` for a PCB: its own copy and the
 * socket record's word (atomic: several CPUs' replicas set the same bit).
 */
export function soSetFlag(i32: Int32Array, o: SockLevelOpts, bit: number, on: boolean): void {
  o.soOptions = on ? o.soOptions | bit : o.soOptions & ~bit;
  if (o.so === 0) return;
  if (on) Atomics.or(i32, (o.so >> 2) + SOW_OPTIONS, bit);
  else Atomics.and(i32, (o.so >> 2) + SOW_OPTIONS, ~bit);
}

/**
 * SOL_SOCKET options, run on the owning CPU (sosetopt/sogetopt). Returns
 * an errno. No lock; does not sleep.
 */
export function solevelCtloutput(ctx: MsgContext, sbs: SockBufs, msg: number, o: SockLevelOpts): number {
  const { dir, name } = soptOf(ctx, msg);
  const set = dir === SOPT_SET;
  if (isFlagOption(name)) {
    if (!set) return putInt(ctx, msg, o.soOptions & name);
    const v = intValue(ctx, msg);
    if (v === null) return EINVAL;
    soSetFlag(ctx.i32, o, name, v !== 0);
    return 0;
  }
  switch (name) {
    case SO_RCVBUF:
    case SO_SNDBUF: {
      if (!set) return putInt(ctx, msg, name === SO_RCVBUF ? sbs.hiwat(o.rcv) : o.sndbuf);
      const v = intValue(ctx, msg);
      if (v === null || v < 1) return EINVAL;
      if (v > sbs.maxAdj) return ENOBUFS;
      if (name === SO_SNDBUF) {
        o.sndbuf = v;
        if (o.sndlowat > v) o.sndlowat = v;
        return 0;
      }
      return sbs.sbreserve(o.rcv, v) ? 0 : ENOBUFS;
    }
    case SO_RCVLOWAT:
    case SO_SNDLOWAT: {
      if (!set) return putInt(ctx, msg, name === SO_RCVLOWAT ? sbs.lowat(o.rcv) : o.sndlowat);
      const v = intValue(ctx, msg);
      if (v === null || v < 0) return EINVAL;
      if (name === SO_RCVLOWAT) sbs.setLowat(o.rcv, v);
      else o.sndlowat = Math.max(1, Math.min(v, o.sndbuf));
      return 0;
    }
    case SO_ERROR:
      if (set) return ENOPROTOOPT;
      return putInt(ctx, msg, o.so === 0 ? 0 : Atomics.exchange(ctx.i32, (o.so >> 2) + SOW_ERROR, 0));
    case SO_TYPE:
      if (set) return ENOPROTOOPT;
      return putInt(ctx, msg, o.so === 0 ? 0 : ctx.i32[(o.so >> 2) + SOW_TYPE]);
    case SO_LINGER: {
      // struct linger { int l_onoff; int l_linger; }: exactly 8 bytes.
      const p = ctx.payload(msg) >> 2;
      if (ctx.payloadLength(msg) !== 8) return EINVAL;
      if (set) {
        o.lingerOn = ctx.i32[p];
        o.lingerSecs = ctx.i32[p + 1];
        soSetFlag(ctx.i32, o, SO_LINGER, o.lingerOn !== 0);
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
