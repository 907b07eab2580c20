/**
 * The trivial protocol: connected local datagram pairs (socketpair(2) with
 * SOCK_DGRAM), enough to drive every socket request through the message
 * machinery end to end. Both PCBs of a pair live on one CPU; a send appends
 * the datagram, with the sender's address (its PCB id, 4 bytes) in an
 * MT_SONAME mbuf, to the peer's receive sockbuf, whose producer is that CPU
 * and whose consumer is the peer's user.
 *
 * PCBs are per-CPU JS objects (thread-local, no lock), as DragonFly keeps
 * per-CPU PCB tables.
 */
import { EINVAL, ENOBUFS, ENOPROTOOPT, ENOTCONN, EPIPE, EISCONN } from '../errno.js';
import type { ProtocolThread } from '../lwkt/protothread.js';
import type { Mbufs } from '../mbuf/mbuf.js';
import { SO_RCV } from './layout.js';
import { A_PCB, A_SO, A_X, SOCK_DGRAM, SOPT_SET, type ProtoSw } from './protosw.js';
import type { SockBufs } from './sockbuf.js';
import { solevelCtloutput, soptOf, SOL_SOCKET, type SockLevelOpts } from './sockopt.js';

export const IPPROTO_LOOP = 253;
/** Protocol-level options of the loop protocol. */
export const LOOP_LEVEL = IPPROTO_LOOP;
/** An int the PCB stores and returns (exercises protocol-level options). */
export const LOOP_TAG = 1;

interface LoopPcb extends SockLevelOpts {
  id: number;
  peer: LoopPcb | null;
  shut: boolean;
  tag: number;
}

/** Make the loop protocol's switch entry for one CPU. */
export function loopProtocol(mb: Mbufs, sbs: SockBufs): ProtoSw {
  const pcbs = new Map<number, LoopPcb>();
  let nextId = 1;
  const i32 = mb.i32;
  const addr = new Uint8Array(4);
  const pcbOf = (td: ProtocolThread, msg: number): LoopPcb | undefined => pcbs.get(td.ctx.arg(msg, A_PCB));
  const eofPeer = (p: LoopPcb): void => {
    if (p.peer !== null) {
      sbs.sbmarkeof(p.peer.rcv);
      p.peer.peer = null;
      p.peer = null;
    }
  };
  return {
    type: SOCK_DGRAM,
    protocol: IPPROTO_LOOP,
    name: 'loop-dgram',
    attach(td, msg) {
      const so = td.ctx.arg(msg, A_SO);
      const id = td.cpu * 0x100000 + nextId++;
      pcbs.set(id, { id, peer: null, shut: false, tag: 0, so, rcv: i32[(so >> 2) + SO_RCV], sndbuf: 9216, sndlowat: 2048, soOptions: 0, lingerOn: 0, lingerSecs: 0 });
      td.ctx.setArg(msg, A_PCB, id);
      return 0;
    },
    detach(td, msg) {
      const p = pcbOf(td, msg);
      if (p === undefined) return EINVAL;
      eofPeer(p);
      pcbs.delete(p.id);
      return 0;
    },
    connect2(td, msg) {
      const a = pcbOf(td, msg);
      const b = pcbs.get(td.ctx.arg(msg, A_X));
      if (a === undefined || b === undefined || a === b) return EINVAL;
      if (a.peer !== null || b.peer !== null) return EISCONN;
      a.peer = b;
      b.peer = a;
      return 0;
    },
    send(td, msg) {
      // The chain came with the message: from here on it is ours to queue or free.
      const m = td.ctx.arg(msg, A_X);
      const p = pcbOf(td, msg);
      let err = 0;
      if (p === undefined) err = EINVAL;
      else if (p.shut) err = EPIPE;
      else if (p.peer === null) err = ENOTCONN;
      else {
        new DataView(addr.buffer).setUint32(0, p.id);
        if (!sbs.sbappendaddr(p.peer.rcv, addr, m)) err = ENOBUFS; // full: dropped, as udp_input drops
        else return 0;
      }
      mb.m_freem(m);
      return err;
    },
    shutdown(td, msg) {
      const p = pcbOf(td, msg);
      if (p === undefined) return EINVAL;
      p.shut = true;
      if (p.peer !== null) sbs.sbmarkeof(p.peer.rcv);
      return 0;
    },
    ctloutput(td, msg) {
      const p = pcbOf(td, msg);
      if (p === undefined) return EINVAL;
      const o = soptOf(td.ctx, msg);
      if (o.level === SOL_SOCKET) return solevelCtloutput(td.ctx, sbs, msg, p);
      if (o.level !== LOOP_LEVEL || o.name !== LOOP_TAG) return ENOPROTOOPT;
      if (o.size !== 4) return EINVAL;
      if (o.dir === SOPT_SET) p.tag = i32[o.val >> 2];
      else i32[o.val >> 2] = p.tag;
      return 0;
    },
    drain() {
      for (const p of pcbs.values()) sbs.sbmarkeof(p.rcv);
      pcbs.clear();
    },
  };
}
