/**
 * UDP on the socket layer (udp_usrreqs as messages): the protocol switch
 * entry every CPU registers, so a socket made by any user thread sends each
 * request (attach, bind, connect, send, detach, ctloutput) as a PRU_*
 * message to the CPU that owns its PCB, and receives datagrams through the
 * semi-lockless sockbuf (sbappendaddr with the sender's address).
 *
 * The seed's per-CPU design:
 * - An unconnected socket has a PCB replica on EVERY CPU (attached and bound
 *   on each), each with its own receive sockbuf: RSS brings a datagram to the
 *   CPU its 4-tuple hashes to, that CPU appends to its own ring, so a busy
 *   server is served by all CPUs with no shared state and every ring keeps
 *   one producer.
 * - A connected socket lives on ONE CPU: the one the replies' 4-tuple hashes
 *   to. connect() that changes the hash MOVES the PCB, as DragonFly's inpcb
 *   move does: phase "select" on the current CPU picks the local address and
 *   port and the target CPU and marks the PCB as moving; phase "insert" on
 *   the target enters a new connected PCB (replacing the target's own
 *   replica, if any, in one handler run); then every other replica is
 *   deleted with PRU_DETACH. A datagram that reached an old replica
 *   meanwhile is already in that CPU's ring, which the user still reads.
 *
 * The socket record is the one record of every protocol (zone "socket",
 * src/kern/socket/layout.ts): SO_RCV + c is CPU c's receive ring, into which
 * that CPU's udp_input appends directly (udp_usrreq.ts), then sorwakeup on
 * the record's wake word (SO_RWAIT / SO_RSEQ, the sockbuf's Dekker protocol
 * extended to a socket with many rings).
 *
 * so_error: an ICMP port unreachable about a datagram a CONNECTED socket
 * sent reaches the CPU that owns its PCB (mpnet.ts frameCpu dispatches the
 * error by the quoted 4-tuple, as DragonFly's udp_ctlport), where icmp.ts
 * sets ECONNREFUSED on the PCB and calls pcb.onError, which moves it into
 * the record's SO_ERROR word (so_error belongs to the socket, not to one
 * CPU's replica) and wakes the user (store SO_ERROR, then look at SO_RWAIT;
 * the user stores SO_RWAIT, then looks at SO_ERROR). The user takes it with
 * an atomic exchange to 0 (so_error's read-and-clear in soreceive), so each
 * error is reported once; a second ICMP before the user looked overwrites
 * the first, as so_error does. A word rather than a record in the sockbuf
 * because so_error is not data: it must not wait behind queued datagrams
 * nor take ring space. Unconnected sockets are never told.
 *
 * Every handler runs on its CPU's protocol thread; nothing locks or sleeps.
 */
import type { ProtocolThread } from '../kern/lwkt/protothread.js';
import { EADDRINUSE, EINVAL, EMSGSIZE, ENOPROTOOPT, ENOTCONN } from '../kern/errno.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { PH_LEN } from '../kern/mbuf/layout.js';
import type { Uma } from '../uma/uma.js';
import type { Zone } from '../uma/zone.js';
import { A_PCB, A_SO, A_X, A_Y, A_Z, SOCK_DGRAM, SOPT_SET, type ProtoSw } from '../kern/socket/protosw.js';
import type { SockBufs } from '../kern/socket/sockbuf.js';
import { SocketRecords, socketZone } from '../kern/socket/socketvar.js';
import { SO_PROTO, SO_TYPE } from '../kern/socket/layout.js';
import { solevelCtloutput, soptOf, SOL_SOCKET } from '../kern/socket/sockopt.js';
import { IPPROTO_UDP, INADDR_ANY } from '../wire/ipv4.js';
import { rssFlowCpu } from '../net/rss.js';
import type { Stack } from './stack.js';
import { UDP_ADDR_LEN, type UdpPcb } from './udp_usrreq.js';
import { UDPS } from './stats.js';
import { INP_HIGHPORT, INP_LOWPORT, INP_MOVING, IP_PORTRANGE, inpPortrange, inpSetPortrange } from './in_pcb.js';

export { UDP_ADDR_LEN };
export { SO_BROADCAST } from '../kern/socket/sockopt.js';

/** Request arguments beyond the socket layer's A_X..A_Z. */
export const A_PHASE = 6;
/** PRU_CONNECT phases: pick and reserve on the current CPU, enter on the target, or undo a select. */
export const CONNECT_SELECT = 0;
export const CONNECT_INSERT = 1;
export const CONNECT_ABORT = 2;

/** IP_TTL (netinet/in.h). */
export const IPPROTO_IP = 0;
export const IP_TTL = 4;

/** The socket record zone (the one record of every protocol; kept under this name for its callers). */
export function udpSocketZone(uma: Uma): Zone {
  return socketZone(uma);
}

/**
 * The CPU a connected socket belongs on: where the replies' 4-tuple hashes
 * (they come from faddr:fport to laddr:lport), exactly as frameCpu
 * dispatches received frames.
 */
export function connectedCpu(laddr: number, lport: number, faddr: number, fport: number, ncpus: number): number {
  return rssFlowCpu(faddr, laddr, fport, lport, ncpus);
}

/** One CPU's half of a socket. */
interface SoUdp {
  rec: number;
  host: number;
  stack: Stack;
  pcb: UdpPcb;
}

/** One row of the socket table (netstat -an). */
export interface PcbRow {
  cpu: number;
  host: number;
  laddr: number;
  lport: number;
  faddr: number;
  fport: number;
  queued: number;
  user: boolean;
}

/**
 * The UDP protocol switch entry of one CPU. `stackOf(host)` gives this CPU's
 * stack instance of a host (null if there is none or it is closed).
 */
export function udpProtocol(td: ProtocolThread, mb: Mbufs, sbs: SockBufs, stackOf: (host: number) => Stack | null): ProtoSw & { rows(): PcbRow[] } {
  const ctx = td.ctx;
  const i32 = mb.i32;
  const sor = new SocketRecords(sbs);
  const pcbs = new Map<number, SoUdp>();
  const pcbOf = (msg: number): SoUdp | undefined => pcbs.get(ctx.arg(msg, A_PCB));

  /** A UDP socket record this CPU may attach to. */
  const validRecord = (rec: number): boolean => sor.valid(rec) && i32[(rec >> 2) + SO_TYPE] === SOCK_DGRAM && i32[(rec >> 2) + SO_PROTO] === IPPROTO_UDP;

  /** pru_attach's PCB: it delivers into this CPU's ring of the record (ring 0 of a one-ring record). */
  const newPcb = (rec: number, host: number, stack: Stack): SoUdp => {
    const pcb = stack.udp.attach(rec, sor.rings(rec) > 1 ? td.cpu : 0);
    pcb.soOptions = sor.options(rec);
    return { rec, host, stack, pcb };
  };

  const remove = (s: SoUdp): void => {
    s.stack.udp.detach(s.pcb);
    if (pcbs.get(s.rec) === s) pcbs.delete(s.rec);
  };

  /** CONNECT_SELECT: connect this CPU's replica (binding a port unique for the 4-tuple) and name the target CPU. */
  const select = (s: SoUdp, msg: number, faddr: number, fport: number): number => {
    const udp = s.stack.udp;
    if (s.pcb.faddr !== INADDR_ANY) udp.disconnect(s.pcb); // a connected socket may connect again
    const e = udp.connect(s.pcb, faddr, fport);
    if (e !== 0) return e;
    s.stack.udp.pcbinfo.markMoving(s.pcb);
    ctx.setArg(msg, A_X, s.pcb.laddr);
    ctx.setArg(msg, A_Y, s.pcb.lport);
    ctx.setArg(msg, A_Z, connectedCpu(s.pcb.laddr, s.pcb.lport, faddr, fport, ctx.ncpus));
    return 0;
  };

  /** CONNECT_INSERT on the target: a new connected PCB replaces this CPU's replica (or is the selected one). */
  const insert = (s: SoUdp | undefined, msg: number, faddr: number, fport: number): number => {
    const rec = ctx.arg(msg, A_SO);
    const laddr = ctx.arg(msg, A_Z) >>> 0;
    const lport = ctx.arg(msg, A_PHASE + 1);
    if (s !== undefined && s.pcb.faddr === faddr && s.pcb.fport === fport && s.pcb.lport === lport && s.pcb.laddr === laddr) {
      s.pcb.flags &= ~INP_MOVING; // selected here: it stays
      return 0;
    }
    const host = s?.host ?? ctx.arg(msg, A_PHASE + 2);
    const stack = stackOf(host);
    if (stack === null || !validRecord(rec)) return EINVAL;
    const n = newPcb(rec, host, stack);
    if (s !== undefined) {
      n.pcb.soOptions = s.pcb.soOptions;
      n.pcb.ttl = s.pcb.ttl;
      n.pcb.sndbuf = s.pcb.sndbuf;
      n.pcb.flags |= s.pcb.flags & (INP_HIGHPORT | INP_LOWPORT);
    }
    // Insert the new one first: if this CPU holds the 4-tuple, its replica stays as it was.
    const e = stack.udp.insertConnected(n.pcb, laddr, lport, faddr, fport);
    if (e !== 0) {
      stack.udp.detach(n.pcb);
      return e;
    }
    if (s !== undefined) remove(s);
    pcbs.set(rec, n);
    return 0;
  };

  return {
    type: SOCK_DGRAM,
    protocol: IPPROTO_UDP,
    name: 'udp',
    /** pru_attach: a replica of socket `rec` on this CPU for host A_X; returns the host's address in A_X. */
    attach(_td, msg) {
      const rec = ctx.arg(msg, A_SO);
      const host = ctx.arg(msg, A_X);
      const stack = stackOf(host);
      if (stack === null || !validRecord(rec) || pcbs.has(rec)) return EINVAL;
      pcbs.set(rec, newPcb(rec, host, stack));
      ctx.setArg(msg, A_PCB, rec);
      ctx.setArg(msg, A_X, stack.ifs.length > 0 ? stack.ifs[0].addr : 0);
      return 0;
    },
    detach(_td, msg) {
      const s = pcbOf(msg);
      if (s === undefined) return EINVAL;
      remove(s);
      return 0;
    },
    /** pru_bind (in_pcbbind): A_X address, A_Y port (0: ephemeral); the port chosen in A_Y. */
    bind(_td, msg) {
      const s = pcbOf(msg);
      if (s === undefined) return EINVAL;
      const e = s.stack.udp.bind(s.pcb, ctx.arg(msg, A_X) >>> 0, ctx.arg(msg, A_Y));
      if (e !== 0) return e;
      ctx.setArg(msg, A_Y, s.pcb.lport);
      return 0;
    },
    /**
     * pru_connect in phases (see the file comment). SELECT: A_X faddr,
     * A_Y fport; answers A_X laddr, A_Y lport, A_Z the target CPU. INSERT:
     * A_X faddr, A_Y fport, A_Z laddr, A_PHASE+1 lport, A_PHASE+2 host.
     * ABORT: back out of a SELECT whose INSERT failed.
     */
    connect(_td, msg) {
      const faddr = ctx.arg(msg, A_X) >>> 0;
      const fport = ctx.arg(msg, A_Y);
      const phase = ctx.arg(msg, A_PHASE);
      const s = pcbOf(msg);
      if (phase === CONNECT_ABORT) {
        if (s === undefined) return EINVAL;
        s.pcb.flags &= ~INP_MOVING;
        s.stack.udp.disconnect(s.pcb);
        return 0;
      }
      if (faddr === INADDR_ANY || fport <= 0 || fport > 65535) return EINVAL;
      if (phase === CONNECT_SELECT) return s === undefined ? EINVAL : select(s, msg, faddr, fport);
      return insert(s, msg, faddr, fport);
    },
    /** pru_send: A_X the chain (ours from now on), A_Y/A_Z destination (0: the connected peer). */
    send(_td, msg) {
      const m = ctx.arg(msg, A_X);
      const s = pcbOf(msg);
      if (s === undefined) {
        mb.m_freem(m);
        return EINVAL;
      }
      let faddr = ctx.arg(msg, A_Y) >>> 0;
      let fport = ctx.arg(msg, A_Z);
      if (faddr === 0) {
        faddr = s.pcb.faddr;
        fport = s.pcb.fport;
      }
      if (faddr === 0 || fport <= 0 || fport > 65535) {
        mb.m_freem(m);
        return faddr === 0 ? ENOTCONN : EINVAL;
      }
      const len = i32[(m + PH_LEN) >> 2];
      // sosend_dgram: larger than so_snd (SO_SNDBUF, default net.inet.udp.maxdgram) is EMSGSIZE.
      if (len > s.stack.udp.cfg.maxdgram || len > s.pcb.sndbuf) {
        s.stack.stats.udp[UDPS.odropped]++;
        mb.m_freem(m);
        return EMSGSIZE;
      }
      if (s.pcb.lport === 0) {
        const e = s.stack.udp.bind(s.pcb, INADDR_ANY, 0);
        if (e !== 0) {
          mb.m_freem(m);
          return e;
        }
      }
      return s.stack.udp.outputChain(s.pcb, m, len, faddr, fport);
    },
    /** SOL_SOCKET options (sockopt.ts: SO_REUSEADDR/PORT/PORT_LB, SO_BROADCAST, SO_RCVBUF...), IP_TTL, IP_PORTRANGE. */
    ctloutput(_td, msg) {
      const s = pcbOf(msg);
      if (s === undefined) return EINVAL;
      const o = soptOf(ctx, msg);
      if (o.level === SOL_SOCKET) return solevelCtloutput(ctx, sbs, msg, s.pcb);
      if (o.level !== IPPROTO_IP || (o.name !== IP_TTL && o.name !== IP_PORTRANGE)) return ENOPROTOOPT;
      if (o.size !== 4) return EINVAL;
      const p = s.pcb;
      if (o.name === IP_TTL) {
        if (o.dir !== SOPT_SET) i32[o.val >> 2] = p.ttl;
        else {
          const v = i32[o.val >> 2];
          if (v < 1 || v > 255) return EINVAL;
          p.ttl = v;
        }
        return 0;
      }
      if (o.dir !== SOPT_SET) {
        i32[o.val >> 2] = inpPortrange(p);
        return 0;
      }
      return inpSetPortrange(p, i32[o.val >> 2]);
    },
    /** CPU shutdown: drop every PCB; the user reads EOF from its rings. */
    drain() {
      for (const s of [...pcbs.values()]) {
        const rcv = s.pcb.rcv;
        remove(s);
        sbs.sbmarkeof(rcv);
        sor.sowakeupAlways(s.rec);
      }
    },
    rows() {
      const out: PcbRow[] = [];
      for (const s of pcbs.values()) {
        const p = s.pcb;
        out.push({ cpu: td.cpu, host: s.host, laddr: p.laddr, lport: p.lport, faddr: p.faddr, fport: p.fport, queued: p.rcvBytes, user: true });
      }
      return out;
    },
  };
}
