/**
 * TCP's user requests on the worker CPUs (the CPU half of lib/netmp.ts):
 * one command, NET_TCP, whose first argument selects the TcpSockets call
 * (tcp_usrreq.ts) to run on this CPU's instance of a host. A connection
 * lives on the CPU that netisr brings its segments to (netisr.ts: TCP goes
 * by the 4-tuple, rssFlowCpu(faddr, laddr, fport, lport)); an active open's
 * ephemeral port is one that hashes to this CPU (TcpTable.portOk, set by
 * vnet.ts); a listener has a replica on every CPU. Registered from the network stack's handler module
 * (net/mpnet.ts) on every CPU.
 *
 * Arguments: 0 op, 1 host, 2 id, 3.. per op; results in the arguments from 0.
 *
 *   TCP_SOCKET            -> id | -errno
 *   TCP_BIND(addr, port)  -> 0 | -errno            TCP_LISTEN(backlog)   -> 0 | -errno
 *   TCP_CONNECT(addr, port) -> -EINPROGRESS | -errno
 *   TCP_ACCEPT            -> id | -errno, faddr, fport, laddr, lport
 *   TCP_READ(max, flags)  -> n | 0 (EOF) | -errno, chain (so_rcv's own mbufs of the n bytes,
 *                            up to TCP_READ_MAX, no packet header: the caller's to free).
 *                            With TCP_READ_WAIT an empty buffer keeps the message (EJUSTRETURN)
 *                            until TCP's wakeup finds data, EOF or an error; one kept read per id
 *                            (-EALREADY for a second); close and the CPU's shutdown answer it
 *                            -ESHUTDOWN.
 *   TCP_WRITE(_, chain, len) -> n taken | -errno, space (the chain, argument 4, is always freed here:
 *                            the caller keeps its own copy of what was not taken; space is so_snd's
 *                            free room after the write, the user's write credit: lib/netmp.ts)
 *   TCP_SHUTDOWN(how), TCP_CLOSE, TCP_SETSOCKOPT(level, name, v, v2) -> 0 | -errno
 *   TCP_GETSOCKOPT(level, name) -> r, out0, out1
 *                            (TCP_CONGESTION, a string option: v / out0 is the algorithm's index
 *                            in CC_ALGOS, cc/cc_list.ts)
 *   TCP_NAMES             -> laddr, lport, faddr, fport (0s when unknown)
 *   TCP_POLL(events)      -> the poll bits, answered when one of `events`, POLLERR, POLLHUP or
 *                            POLLNVAL is set: at once, or later from TCP's wakeup (the message
 *                            is kept: EJUSTRETURN). Close and the CPU's shutdown answer every
 *                            pending poll of the id with POLLNVAL.
 *
 * Runs on the CPU's protocol thread only; no lock; never sleeps.
 */
import type { ProtocolThread } from '../kern/lwkt/protothread.js';
import type { MsgContext } from '../kern/lwkt/msgport.js';
import { EAGAIN, EALREADY, EINVAL, EJUSTRETURN, ESHUTDOWN } from '../kern/errno.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { m_copydata } from '../kern/mbuf/ops.js';
import type { TcpSockets } from '../netinet/tcp_usrreq.js';
import { IPPROTO_TCP, POLLERR, POLLHUP, POLLNVAL, TCP_CONGESTION } from '../netinet/tcp_api.js';
import { CC_ALGOS, ccAlgoIndex } from '../netinet/cc/cc_list.js';
import type { Stack } from '../netinet/stack.js';

export const NET_TCP = 0x5190;

export const TCP_SOCKET = 1;
export const TCP_BIND = 2;
export const TCP_LISTEN = 3;
export const TCP_CONNECT = 4;
export const TCP_ACCEPT = 5;
export const TCP_READ = 6;
export const TCP_WRITE = 7;
export const TCP_SHUTDOWN = 8;
export const TCP_CLOSE = 9;
export const TCP_SETSOCKOPT = 10;
export const TCP_GETSOCKOPT = 11;
export const TCP_NAMES = 12;
export const TCP_POLL = 13;

/** The argument of TCP_WRITE that holds its chain (the cargo bit). */
export const TCP_A_CHAIN = 4;
/** Largest TCP_WRITE (and the reads of the copying paths). */
export const TCP_IO_MAX = 64 * 1024;
/** Largest TCP_READ: whatever so_rcv holds, up to this, leaves in one reply (by handle). */
export const TCP_READ_MAX = 1024 * 1024;
/** TCP_READ's flags (argument 4): keep the request while so_rcv is empty, answer it when data, EOF or an error comes (a parked read: one message per read instead of a read, a poll and a read). */
export const TCP_READ_WAIT = 1;

/** One host's TCP on this CPU and the polls waiting on its ids. */
class HostTcp {
  readonly polls = new Map<number, number[]>();
  /** TCP_READ(max, TCP_READ_WAIT) messages kept until their id has data, EOF or an error: one per id. */
  readonly reads = new Map<number, number>();
  /** Ids whose kept read TCP's wakeup found ready, answered from the poll hook after the input that woke them. */
  private readonly ready = new Set<number>();
  constructor(
    readonly so: TcpSockets,
    private readonly ctx: MsgContext,
    private readonly chainOut: Int32Array,
    private readonly td: ProtocolThread,
  ) {
    const prev = so.onwakeup;
    so.onwakeup = (id) => {
      const kept = this.polls.has(id) || this.reads.has(id);
      if (this.reads.has(id)) this.markReady(id);
      if (this.polls.has(id)) this.check(id);
      if (!kept) prev?.(id);
    };
    td.addPollHook(this.answerReady);
  }

  /*
   * The wakeup comes from inside tcp_input (or tcp_output); the read it
   * answers drops so_rcv and may send a window update (tcp_usr_rcvd), which
   * must not run in the middle of that segment's processing. So the id is
   * noted and the read done on the same pass, from the poll hook, once the
   * input is over.
   */
  private markReady(id: number): void {
    this.ready.add(id);
    this.td.kick();
  }

  private readonly answerReady = (): number => {
    if (this.ready.size === 0) return 0;
    let n = 0;
    for (const id of this.ready) {
      this.ready.delete(id);
      if (this.reads.has(id)) {
        this.readKept(id);
        n++;
      }
    }
    return n;
  };

  /**
   * TCP_READ into msg's arguments: n (or 0 at EOF, -errno) and the chain.
   * With `wait` an empty buffer keeps the message (false is returned and
   * nothing is answered); else true, the results are set.
   */
  read(msg: number, id: number, wait: boolean): boolean {
    const n = this.so.readChain(id, Math.min(Math.max(this.ctx.arg(msg, 3), 1), TCP_READ_MAX), this.chainOut);
    if (n === -EAGAIN && wait) return false;
    this.ctx.setArg(msg, 0, n);
    this.ctx.setArg(msg, 1, n > 0 ? this.chainOut[0] : 0);
    return true;
  }

  /** The kept read of id, answered if its socket is readable now. */
  private readKept(id: number): void {
    const msg = this.reads.get(id)!;
    if (!this.read(msg, id, true)) return;
    this.reads.delete(id);
    this.ctx.replymsg(msg, 0);
  }

  /** Answer the polls of id whose events are ready. */
  check(id: number): void {
    const list = this.polls.get(id);
    if (list === undefined) return;
    const bits = this.so.poll(id);
    const keep: number[] = [];
    for (const msg of list) {
      const want = this.ctx.arg(msg, 3) | POLLERR | POLLHUP | POLLNVAL;
      if ((bits & want) !== 0) this.answer(msg, bits);
      else keep.push(msg);
    }
    if (keep.length === 0) this.polls.delete(id);
    else this.polls.set(id, keep);
  }

  /** Answer every poll of id (or of every id) with POLLNVAL, every kept read with -ESHUTDOWN. */
  flush(id?: number): void {
    for (const [k, msg] of this.reads) {
      if (id !== undefined && k !== id) continue;
      this.ctx.setArg(msg, 0, -ESHUTDOWN);
      this.ctx.setArg(msg, 1, 0);
      this.ctx.replymsg(msg, 0);
      this.reads.delete(k);
    }
    for (const [k, list] of this.polls) {
      if (id !== undefined && k !== id) continue;
      for (const msg of list) this.answer(msg, POLLNVAL);
      this.polls.delete(k);
    }
  }

  private answer(msg: number, bits: number): void {
    this.ctx.setArg(msg, 0, bits);
    this.ctx.replymsg(msg, 0);
  }
}

/** Register NET_TCP on this CPU; `stackOf(host)` is the CPU's instance of a host (vnet). */
export function registerTcpUser(td: ProtocolThread, mb: Mbufs, stackOf: (host: number) => Stack | null): void {
  const ctx = td.ctx;
  const hosts = new Map<Stack, HostTcp>();
  const scratch = new Uint8Array(TCP_IO_MAX);
  const opt = new Int32Array(2);
  const chainOut = new Int32Array(1);
  const hostTcp = (st: Stack): HostTcp => {
    let h = hosts.get(st);
    if (h === undefined) hosts.set(st, (h = new HostTcp(st.tcp.sockets!, ctx, chainOut, td)));
    return h;
  };
  td.register(
    NET_TCP,
    'tcp user request',
    (_t, msg) => {
      const a = (i: number) => ctx.arg(msg, i);
      const op = a(0);
      const st = stackOf(a(1));
      if (st === null || st.tcp.sockets === null) {
        if (op === TCP_WRITE && a(TCP_A_CHAIN) !== 0) mb.m_freem(a(TCP_A_CHAIN));
        return EINVAL;
      }
      const h = hostTcp(st);
      const so = h.so;
      const id = a(2);
      const set = (i: number, v: number) => ctx.setArg(msg, i, v | 0);
      switch (op) {
        case TCP_SOCKET:
          set(0, so.socket());
          return 0;
        case TCP_BIND:
          set(0, so.bind(id, a(3) >>> 0, a(4)));
          return 0;
        case TCP_LISTEN:
          set(0, so.listen(id, a(3)));
          return 0;
        case TCP_CONNECT:
          set(0, so.connect(id, a(3) >>> 0, a(4)));
          return 0;
        case TCP_ACCEPT: {
          const nid = so.accept(id);
          set(0, nid);
          const p = nid > 0 ? so.peername(nid) : null;
          const l = nid > 0 ? so.sockname(nid) : null;
          set(1, p?.addr ?? 0);
          set(2, p?.port ?? 0);
          set(3, l?.addr ?? 0);
          set(4, l?.port ?? 0);
          return 0;
        }
        case TCP_READ: {
          // so_rcv's mbufs leave by handle (no copy here); the reader copies once and frees.
          const wait = (a(4) & TCP_READ_WAIT) !== 0;
          if (wait && (h.reads.has(id) || st.tcp.closed)) {
            set(0, st.tcp.closed ? -ESHUTDOWN : -EALREADY);
            set(1, 0);
            return 0;
          }
          if (h.read(msg, id, wait)) return 0;
          h.reads.set(id, msg);
          return EJUSTRETURN;
        }
        case TCP_WRITE: {
          const m = a(TCP_A_CHAIN);
          const len = Math.min(a(5), TCP_IO_MAX);
          if (m !== 0 && len > 0 && so.sendSpace(id) >= len) {
            // It fits (always, for a write within the user's credit): so_snd takes the chain itself.
            set(0, so.writeChain(id, m, len));
          } else {
            // A partial write takes what fits by copy; the caller keeps the rest.
            if (m !== 0 && len > 0) m_copydata(mb, m, 0, len, scratch);
            if (m !== 0) mb.m_freem(m);
            set(0, len > 0 ? so.write(id, scratch.subarray(0, len)) : 0);
          }
          set(1, Math.max(0, so.sendSpace(id))); // the user's write credit (0 when it may not write)
          return 0;
        }
        case TCP_SHUTDOWN:
          set(0, so.shutdown(id, a(3)));
          return 0;
        case TCP_CLOSE:
          set(0, so.close(id));
          h.flush(id);
          return 0;
        case TCP_SETSOCKOPT:
          // TCP_CONGESTION travels as the algorithm's index in CC_ALGOS (-1: a name none has).
          if (a(3) === IPPROTO_TCP && a(4) === TCP_CONGESTION) set(0, so.setsockoptString(id, IPPROTO_TCP, TCP_CONGESTION, CC_ALGOS[a(5)]?.name ?? ''));
          else set(0, so.setsockopt(id, a(3), a(4), a(5), a(6)));
          return 0;
        case TCP_GETSOCKOPT:
          opt[0] = opt[1] = 0;
          if (a(3) === IPPROTO_TCP && a(4) === TCP_CONGESTION) {
            const r = so.getsockoptString(id, IPPROTO_TCP, TCP_CONGESTION);
            set(0, typeof r === 'number' ? r : 0);
            set(1, typeof r === 'string' ? ccAlgoIndex(r) : -1);
            set(2, 0);
            return 0;
          }
          set(0, so.getsockopt(id, a(3), a(4), opt));
          set(1, opt[0]);
          set(2, opt[1]);
          return 0;
        case TCP_NAMES: {
          const l = so.sockname(id);
          const p = so.peername(id);
          set(0, l?.addr ?? 0);
          set(1, l?.port ?? 0);
          set(2, p?.addr ?? 0);
          set(3, p?.port ?? 0);
          return 0;
        }
        case TCP_POLL: {
          const bits = so.poll(id);
          if ((bits & (a(3) | POLLERR | POLLHUP | POLLNVAL)) !== 0 || st.tcp.closed) {
            set(0, st.tcp.closed ? POLLNVAL : bits);
            return 0;
          }
          const list = h.polls.get(id);
          if (list === undefined) h.polls.set(id, [msg]);
          else list.push(msg);
          return EJUSTRETURN;
        }
        default:
          return EINVAL;
      }
    },
    undefined,
    1 << TCP_A_CHAIN,
  );
  // A stopping CPU answers every kept poll, so no user waits on a dead CPU.
  td.shutdownHooks.push(() => {
    for (const h of hosts.values()) h.flush();
  });
}


