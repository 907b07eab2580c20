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
 * The user socket record (zone "udp socket", US_* words) holds the ring of
 * every CPU and a wake word: each CPU, after appending, bumps US_RSEQ when
 * the user announced it is about to sleep (US_RWAIT), the same Dekker
 * protocol the sockbuf uses for one ring, extended to a socket with many.
 *
 * so_error: an ICMP port unreachable about a datagram a CONNECTED socket
 * sent reaches the CPU that owns its PCB (mpnet.ts frameCpu dispatches the
 * error by the quoted 4-tuple, as DragonFly's udp_ctlport), where icmp.ts
 * sets ECONNREFUSED on the PCB and calls pcb.onError. That CPU moves the
 * error into the socket record's US_SOERROR word (so_error belongs to the
 * socket, not to one CPU's replica: it clears the PCB's copy) and wakes the
 * user with the same Dekker protocol as a datagram (store US_SOERROR, then
 * look at US_RWAIT; the user stores US_RWAIT, then looks at US_SOERROR). The
 * user takes it with an atomic exchange to 0 (BSD's so_error read-and-clear
 * in soreceive), so each error is reported once and the next send/recv
 * works; a second ICMP before the user looked overwrites the first, as
 * so_error does. An error word rather than a record in the sockbuf because
 * so_error is not data: it must not wait behind queued datagrams nor take
 * ring space (a full ring would lose it). Unconnected sockets are never told
 * (icmp.ts only notifies a PCB whose foreign address and port match).
 *
 * Every handler runs on its CPU's protocol thread; nothing locks or sleeps.
 */
import type { ProtocolThread } from '../kern/lwkt/protothread.js';
import { EINVAL, EMSGSIZE, ENOPROTOOPT, ENOTCONN } from '../kern/errno.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { PH_LEN } from '../kern/mbuf/layout.js';
import type { Uma } from '../uma/uma.js';
import type { Zone } from '../uma/zone.js';
import { A_PCB, A_SO, A_X, A_Y, A_Z, SOCK_DGRAM, SOPT_SET, type ProtoSw } from '../kern/socket/protosw.js';
import type { SockBufs } from '../kern/socket/sockbuf.js';
import { solevelCtloutput, soptOf, SOL_SOCKET, type SockLevelOpts } from '../kern/socket/sockopt.js';
import { IPPROTO_UDP, INADDR_ANY, INADDR_BROADCAST } from '../wire/ipv4.js';
import { rssFlowCpu } from '../net/rss.js';
import type { Stack } from './stack.js';
import type { UdpPcb } from './udp_usrreq.js';
import { UDPS } from './stats.js';

/** Zone of the user-side UDP socket records. */
export const US_ZONE = 'udp socket';
export const US_BYTES = 256;
export const US_MAGIC = 0;
export const US_NCPUS = 1;
/** Host (stack instance index on each CPU) the socket belongs to. */
export const US_HOST = 2;
/** CPU of a connected socket, -1 while it has a replica on every CPU. */
export const US_CPU = 3;
/** The user's wake word (own cache line): RWAIT announced by the user, RSEQ bumped by CPUs. */
export const US_RWAIT = 16;
export const US_RSEQ = 17;
/** Pending so_error (errno, 0: none), set by the owning CPU, taken by the user (in the wake word's line). */
export const US_SOERROR = 18;
/** Receive sockbuf of CPU c at word US_RCV + c. */
export const US_RCV = 32;
export const US_MAX_CPUS = US_BYTES / 4 - US_RCV;
export const UDPSOCK_MAGIC = 0x55445053; // "UDPS"

/** Request arguments beyond the socket layer's A_X..A_Z. */
export const A_PHASE = 6;
/** PRU_CONNECT phases. */
export const CONNECT_SELECT = 0;
export const CONNECT_INSERT = 1;

/** SO_BROADCAST (sys/socket.h) and IP_TTL (netinet/in.h). */
export const SO_BROADCAST = 0x0020;
export const IPPROTO_IP = 0;
export const IP_TTL = 4;

/** Length of the address sbappendaddr records: IPv4 address and port, network order. */
export const UDP_ADDR_LEN = 6;

/** Bind the zone of UDP socket records, or create it (first thread). */
export function udpSocketZone(uma: Uma): Zone {
  return uma.zfindOrCreate(US_ZONE, { size: US_BYTES });
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
interface SoUdp extends SockLevelOpts {
  rec: number;
  host: number;
  stack: Stack;
  pcb: UdpPcb;
  /** Marked by CONNECT_SELECT: the PCB is leaving this CPU. */
  moving: boolean;
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
  const pcbs = new Map<number, SoUdp>();
  const addr = new Uint8Array(UDP_ADDR_LEN);
  const pcbOf = (msg: number): SoUdp | undefined => pcbs.get(ctx.arg(msg, A_PCB));

  /**
   * Move what udp_input queued on the PCB into this CPU's ring of the socket
   * and wake the user if it is (about to be) asleep. Runs once per batch.
   */
  const toSockbuf = (s: SoUdp): void => {
    const st = s.stack.stats.udp;
    let n = 0;
    for (let m = s.pcb.dequeue(); m !== 0; m = s.pcb.dequeue()) {
      const a = s.pcb.lastAddr;
      const p = s.pcb.lastPort;
      addr[0] = a >>> 24;
      addr[1] = (a >>> 16) & 0xff;
      addr[2] = (a >>> 8) & 0xff;
      addr[3] = a & 0xff;
      addr[4] = p >>> 8;
      addr[5] = p & 0xff;
      if (sbs.sbappendaddr(s.rcv, addr, m)) n++;
      else {
        // so_rcv full: a counted drop, as udp_append's sbappendaddr failure.
        st[UDPS.delivered]--;
        st[UDPS.fullsock]++;
        mb.m_freem(m);
      }
    }
    if (n > 0) wakeUser(s.rec);
  };

  const wakeUser = (rec: number): void => {
    const w = rec >> 2;
    if (Atomics.load(i32, w + US_RWAIT) !== 0) {
      Atomics.add(i32, w + US_RSEQ, 1);
      Atomics.notify(i32, w + US_RSEQ);
    }
  };

  /**
   * in_pcbnotify's sorwakeup with so_error: publish the PCB's pending error in
   * the socket record (clearing the PCB's copy) and wake the user. Runs on
   * this CPU's protocol thread; no lock, never sleeps.
   */
  const postError = (s: SoUdp, errno: number): void => {
    s.pcb.soError = 0;
    Atomics.store(i32, (s.rec >> 2) + US_SOERROR, errno);
    wakeUser(s.rec);
  };

  const newPcb = (rec: number, host: number, stack: Stack): SoUdp => {
    const pcb = stack.udp.attach();
    // The sockbuf bounds what is queued; the PCB's own ring only carries a batch.
    pcb.recvspace = 64 << 20;
    const s: SoUdp = { rec, host, stack, pcb, moving: false, rcv: i32[(rec >> 2) + US_RCV + td.cpu], sndbuf: 9216, lingerOn: 0, lingerSecs: 0 };
    pcb.onReadable = () => toSockbuf(s);
    pcb.onError = (errno) => postError(s, errno);
    return s;
  };

  /** Delete a PCB: what udp_input queued still reaches the ring first. */
  const remove = (s: SoUdp): void => {
    if (!s.pcb.closed) toSockbuf(s);
    s.stack.udp.detach(s.pcb);
    if (pcbs.get(s.rec) === s) pcbs.delete(s.rec);
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
      if (stack === null || rec === 0 || i32[rec >> 2] !== UDPSOCK_MAGIC || pcbs.has(rec)) return EINVAL;
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
     * pru_connect in two phases (see the file comment). SELECT: A_X faddr,
     * A_Y fport; answers A_X laddr, A_Y lport, A_Z the target CPU. INSERT:
     * A_X faddr, A_Y fport, A_Z laddr, A_PHASE+1 lport.
     */
    connect(_td, msg) {
      const faddr = ctx.arg(msg, A_X) >>> 0;
      const fport = ctx.arg(msg, A_Y);
      if (faddr === INADDR_ANY || fport <= 0 || fport > 65535) return EINVAL;
      const s = pcbOf(msg);
      if (ctx.arg(msg, A_PHASE) === CONNECT_SELECT) {
        if (s === undefined) return EINVAL;
        const st = s.stack;
        let laddr = s.pcb.laddr;
        if (laddr === INADDR_ANY || laddr === INADDR_BROADCAST) {
          const r = st.routes.lookup(faddr);
          if (r === null) return 51; // ENETUNREACH
          laddr = r.ifp.addr;
        }
        if (s.pcb.lport === 0) {
          const e = st.udp.bind(s.pcb, INADDR_ANY, 0);
          if (e !== 0) return e;
        }
        s.moving = true;
        ctx.setArg(msg, A_X, laddr);
        ctx.setArg(msg, A_Y, s.pcb.lport);
        ctx.setArg(msg, A_Z, connectedCpu(laddr, s.pcb.lport, faddr, fport, ctx.ncpus));
        return 0;
      }
      // INSERT: mark (done by SELECT), insert the new, delete the old replica here.
      const rec = ctx.arg(msg, A_SO);
      const host = s?.host ?? ctx.arg(msg, A_PHASE + 2);
      const stack = stackOf(host);
      if (stack === null || i32[rec >> 2] !== UDPSOCK_MAGIC) return EINVAL;
      const n = newPcb(rec, host, stack);
      n.pcb.laddr = ctx.arg(msg, A_Z) >>> 0;
      n.pcb.lport = ctx.arg(msg, A_PHASE + 1);
      n.pcb.faddr = faddr;
      n.pcb.fport = fport;
      if (s !== undefined) {
        n.pcb.broadcast = s.pcb.broadcast;
        n.pcb.ttl = s.pcb.ttl;
        n.sndbuf = s.sndbuf;
      }
      stack.udp.insert(n.pcb);
      if (s !== undefined) remove(s);
      pcbs.set(rec, n);
      return 0;
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
      if (len > s.stack.udp.cfg.maxdgram) {
        s.stack.stats.udp[UDPS.odropped]++;
        mb.m_freem(m);
        return EMSGSIZE;
      }
      return s.stack.udp.outputChain(s.pcb, m, len, faddr, fport);
    },
    /** SOL_SOCKET options (SO_RCVBUF... and SO_BROADCAST) and IP_TTL, by message. */
    ctloutput(_td, msg) {
      const s = pcbOf(msg);
      if (s === undefined) return EINVAL;
      const o = soptOf(ctx, msg);
      const flag = o.level === SOL_SOCKET && o.name === SO_BROADCAST;
      const ttl = o.level === IPPROTO_IP && o.name === IP_TTL;
      if (!flag && !ttl) {
        if (o.level === SOL_SOCKET) return solevelCtloutput(ctx, sbs, msg, s);
        return ENOPROTOOPT;
      }
      if (o.size !== 4) return EINVAL;
      if (o.dir === SOPT_SET) {
        const v = i32[o.val >> 2];
        if (flag) s.pcb.broadcast = v !== 0;
        else if (v < 1 || v > 255) return EINVAL;
        else s.pcb.ttl = v;
      } else i32[o.val >> 2] = flag ? (s.pcb.broadcast ? 1 : 0) : s.pcb.ttl;
      return 0;
    },
    /** CPU shutdown: drop every PCB; the user reads EOF from its rings. */
    drain() {
      for (const s of [...pcbs.values()]) {
        remove(s);
        sbs.sbmarkeof(s.rcv);
        wakeUser(s.rec);
      }
    },
    rows() {
      const out: PcbRow[] = [];
      for (const s of pcbs.values()) {
        const p = s.pcb;
        out.push({ cpu: td.cpu, host: s.host, laddr: p.laddr, lport: p.lport, faddr: p.faddr, fport: p.fport, queued: sbs.sbavail(s.rcv), user: true });
      }
      return out;
    },
  };
}
