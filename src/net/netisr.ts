/**
 * netisr-style dispatch on the MP core (DragonFly's netisr_hashport /
 * ip_mport): which CPU a received frame belongs to, and the handoff of the
 * frame's mbuf, by handle in a message and without a copy, to that CPU.
 *
 * The CPU of a frame is the RSS CPU of its flow (rss.ts, the one flow
 * function): the 4-tuple for unfragmented UDP and TCP (DragonFly's
 * tcp_addrport: a TCP connection's every segment, its PCB and its timers
 * are on the CPU of its 4-tuple), the 2-tuple for fragments (so every
 * fragment of a datagram meets on one CPU) and other IPv4, the quoted flow
 * for an ICMP unreachable about UDP or TCP (udp_ctlport, tcp_ctlport), CPU
 * 0 for anything that is not IPv4 (ARP: DragonFly runs ARP on netisr 0).
 * After reassembly a datagram is sent on to the CPU of its 4-tuple.
 *
 * One Netisr per CPU (thread-local, no lock). Frames for this same CPU that
 * a driver transmits are input on the next pass of the protocol thread (a
 * poll hook), never re-entering the sender and never on a JS timer.
 *
 * Messages: NET_INPUT(mbuf, host, ifindex) a frame for interface `ifindex`
 * of `host` on this CPU; NET_INPUT_DGRAM(mbuf, host) a reassembled datagram
 * whose 4-tuple belongs to this CPU.
 */
import { MBUF_ARG0, type ProtocolThread } from '../kern/lwkt/protothread.js';
import type { Mbufs } from '../kern/mbuf/mbuf.js';
import { M_DATA, M_LEN } from '../kern/mbuf/layout.js';
import { ETH_HLEN, ETHERTYPE_IPV4, ethType } from '../wire/ethernet.js';
import { IP_MF, IP_OFFMASK, IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, ipDst, ipHlen, ipOffField, ipProto, ipSrc } from '../wire/ipv4.js';
import { udpDport, udpSport } from '../wire/udp.js';
import { ICMP_HLEN, ICMP_UNREACH } from '../wire/icmp.js';
import { IFT_ETHER, IFT_PROPVIRTUAL, type IfDriver, type Ifnet } from './if.js';
import { linkTransmit } from './if_offload.js';
import type { Stack } from '../netinet/stack.js';
import { pullup } from './mchain.js';
import { rssAddrCpu, rssFlowCpu } from './rss.js';

export const NET_INPUT = 0x5102;
export const NET_INPUT_DGRAM = 0x5107;

/**
 * The CPU that owns the flow of an IPv4 packet at u8[ip .. end) among n.
 * Reads bytes only (inside [ip, end)); no lock, never sleeps.
 */
export function packetCpu(u8: Uint8Array, ip: number, end: number, ncpus: number): number {
  if (ncpus === 1 || end - ip < 20 || u8[ip] >> 4 !== 4) return 0;
  const src = ipSrc(u8, ip);
  const dst = ipDst(u8, ip);
  const hl = ipHlen(u8, ip);
  if ((ipOffField(u8, ip) & (IP_MF | IP_OFFMASK)) === 0 && hasPorts(ipProto(u8, ip)) && end - ip >= hl + 4) {
    // The ports are the first 4 bytes of both the UDP and the TCP header.
    return rssFlowCpu(src, dst, udpSport(u8, ip + hl), udpDport(u8, ip + hl), ncpus);
  }
  const q = icmpQuotedFlowCpu(u8, ip, hl, end, ncpus);
  if (q >= 0) return q;
  return rssAddrCpu(src, dst, ncpus);
}

/**
 * The CPU that owns an Ethernet frame's flow among n; CPU 0 for anything
 * that is not IPv4. Reads only bytes inside the frame's first mbuf.
 */
export function frameCpu(u8: Uint8Array, f: number, len: number, ncpus: number): number {
  if (ncpus === 1 || len < ETH_HLEN + 20 || ethType(u8, f) !== ETHERTYPE_IPV4) return 0;
  return packetCpu(u8, f + ETH_HLEN, f + len, ncpus);
}

/** Protocols whose flows are hashed by ports (the 4-tuple). */
function hasPorts(proto: number): boolean {
  return proto === IPPROTO_UDP || proto === IPPROTO_TCP;
}

/**
 * DragonFly's udp_ctlport / tcp_ctlport: an ICMP destination unreachable
 * about a UDP datagram or TCP segment we sent must reach the CPU that owns
 * the quoted flow, since its PCB exists on that CPU only. The quoted packet
 * went laddr:lport -> faddr:fport; its replies, which decide the owning CPU,
 * hash as faddr:fport -> laddr:lport. Returns their CPU, or -1 when the
 * packet is not an unfragmented ICMP unreachable quoting the ports of a
 * first UDP or TCP fragment within [ip, end).
 */
function icmpQuotedFlowCpu(u8: Uint8Array, ip: number, hl: number, end: number, ncpus: number): number {
  if ((ipOffField(u8, ip) & (IP_MF | IP_OFFMASK)) !== 0 || ipProto(u8, ip) !== IPPROTO_ICMP) return -1;
  const icmp = ip + hl;
  const q = icmp + ICMP_HLEN;
  if (q + 20 > end || u8[icmp] !== ICMP_UNREACH || u8[q] >> 4 !== 4) return -1;
  const qhl = ipHlen(u8, q);
  if (qhl < 20 || q + qhl + 4 > end || !hasPorts(ipProto(u8, q)) || (ipOffField(u8, q) & IP_OFFMASK) !== 0) return -1;
  return rssFlowCpu(ipDst(u8, q), ipSrc(u8, q), udpDport(u8, q + qhl), udpSport(u8, q + qhl), ncpus);
}

/**
 * Find a local port whose replies from (faddr, fport) land on `cpu` (per-CPU
 * PCB placement); with reqCpu >= 0 the requests must also land on reqCpu on
 * the peer (tests and the benchmark use it to force frames across CPUs).
 */
export function portForCpu(laddr: number, faddr: number, fport: number, cpu: number, ncpus: number, start: number, reqCpu = -1): number {
  for (let k = 0; k < 16384; k++) {
    const p = 49152 + ((start + k) % 16384);
    if (rssFlowCpu(faddr, laddr, fport, p, ncpus) !== cpu) continue;
    if (reqCpu >= 0 && rssFlowCpu(laddr, faddr, p, fport, ncpus) !== reqCpu) continue;
    return p;
  }
  return 0;
}

/** An interface as netisr sees it: the CPU's Ifnet, and its handoff counters. */
export interface NetisrIf {
  ifp: Ifnet;
  /** Frames other CPUs handed to this CPU for it. */
  fromOthers: number;
  /** Frames this CPU received for it and handed to another CPU. */
  handedOff: number;
}

/** How netisr finds this CPU's instances: by host index and interface index (null: gone or closed). */
export interface NetisrHosts {
  iface(host: number, ifIndex: number): NetisrIf | null;
  stack(host: number): Stack | null;
}

export class Netisr {
  /** Same-CPU frames, (mbuf, host, ifindex) triples, input on the next pass. */
  private localQ: number[] = [];
  private readonly hook = (): number => this.drainLocal();
  /** The poll hook is added when the CPU first queues a frame for itself (an idle CPU without hooks may block). */
  private hooked = false;

  constructor(
    private readonly td: ProtocolThread,
    private readonly mb: Mbufs,
    private readonly hosts: NetisrHosts,
  ) {
    const ctx = td.ctx;
    td.register(NET_INPUT, 'net input', (_td, msg) => {
      const m = ctx.arg(msg, 0);
      const vif = this.hosts.iface(ctx.arg(msg, 1), ctx.arg(msg, 2));
      if (vif === null) this.mb.m_freem(m);
      else {
        vif.fromOthers++;
        vif.ifp.input(m);
      }
      return 0;
    }, undefined, MBUF_ARG0); // a message dropped undelivered (stop, dead port) frees its frame
    td.register(NET_INPUT_DGRAM, 'net input dgram', (_td, msg) => {
      const m = ctx.arg(msg, 0);
      const st = this.hosts.stack(ctx.arg(msg, 1));
      if (st === null) this.mb.m_freem(m);
      else st.ipDeliver(m);
      return 0;
    }, undefined, MBUF_ARG0);
  }

  /** The CPU whose flow the frame (or, on a layer-3 interface, the packet) m belongs to. */
  cpuOf(ifp: Ifnet, m: number): number {
    const i32 = this.mb.i32;
    const d = i32[(m + M_DATA) >> 2];
    const len = i32[(m + M_LEN) >> 2];
    const n = this.td.ctx.ncpus;
    return ifp.type === IFT_PROPVIRTUAL ? packetCpu(this.mb.u8, d, d + len, n) : frameCpu(this.mb.u8, d, len, n);
  }

  /**
   * A frame received for interface `ifIndex` of `host` (whose Ifnet on this
   * CPU is `ifp`): input it here if this CPU owns its flow (`direct`: at
   * once, as a device callback may; else on the next pass, as a sender's
   * driver must), or hand it to the owning CPU. A failed handoff counts on
   * `counters[drop]` of the interface it came through (`via`) and frees m.
   */
  dispatch(host: number, ifIndex: number, ifp: Ifnet, m: number, direct: boolean, via: Ifnet, drop: number): void {
    const cpu = this.cpuOf(ifp, m);
    if (cpu === this.td.cpu) {
      if (direct) ifp.input(m);
      else {
        if (!this.hooked) {
          this.hooked = true;
          this.td.addPollHook(this.hook);
        }
        const q = this.localQ;
        q.push(m, host, ifIndex);
        if (q.length === 3) this.td.kick();
      }
      return;
    }
    if (!this.handoff(NET_INPUT, cpu, m, host, ifIndex)) {
      via.counters[drop]++;
      this.mb.m_freem(m);
      return;
    }
    if (direct) {
      const vif = this.hosts.iface(host, ifIndex);
      if (vif !== null) vif.handedOff++;
    }
  }

  /** A reassembled datagram of `host` (UDP or TCP): deliver here or on the CPU of its 4-tuple (always consumes m). */
  redispatch(host: number, st: Stack, m: number): boolean {
    const ncpus = this.td.ctx.ncpus;
    if (ncpus === 1) return false;
    const mb = this.mb;
    const i32 = mb.i32;
    m = pullup(mb, m, 28);
    if (m === 0) return true; // freed (too short): counted as consumed
    const ip = i32[(m + M_DATA) >> 2];
    const u8 = mb.u8;
    const hl = ipHlen(u8, ip);
    if (!hasPorts(ipProto(u8, ip)) || i32[(m + M_LEN) >> 2] < hl + 4) {
      st.ipDeliver(m);
      return true;
    }
    const cpu = rssFlowCpu(ipSrc(u8, ip), ipDst(u8, ip), udpSport(u8, ip + hl), udpDport(u8, ip + hl), ncpus);
    if (cpu === this.td.cpu) st.ipDeliver(m);
    else if (!this.handoff(NET_INPUT_DGRAM, cpu, m, host, 0)) mb.m_freem(m);
    return true;
  }

  /** Send m to `cpu` in a message; false (m still ours) when no message or the port is full. */
  private handoff(cmd: number, cpu: number, m: number, host: number, ifIndex: number): boolean {
    const ctx = this.td.ctx;
    const msg = ctx.allocmsg(cmd);
    if (msg === 0) return false;
    ctx.setArg(msg, 0, m);
    ctx.setArg(msg, 1, host);
    ctx.setArg(msg, 2, ifIndex);
    if (!ctx.sendmsg(cpu, msg)) {
      // Port full (backpressure) or machine stopping: drop, as a full NIC ring does.
      ctx.freemsg(msg);
      return false;
    }
    return true;
  }

  /** Input the same-CPU frames queued by drivers; returns how many. */
  private drainLocal(): number {
    const q = this.localQ;
    if (q.length === 0) return 0;
    this.localQ = [];
    for (let i = 0; i < q.length; i += 3) {
      const vif = this.hosts.iface(q[i + 1], q[i + 2]);
      if (vif === null) this.mb.m_freem(q[i]);
      else vif.ifp.input(q[i]);
    }
    return q.length / 3;
  }

  /** Free what is queued (the CPU's stacks are closing). */
  flush(): void {
    for (let i = 0; i < this.localQ.length; i += 3) this.mb.m_freem(this.localQ[i]);
    this.localQ = [];
  }
}

/**
 * Transmit side of the cross-CPU in-memory link: each frame goes to the CPU
 * that owns its flow on the peer (host, interface), by handle. The wire is
 * memory and cannot corrupt, so it is a clean link as memlink.ts's is
 * (MEMLINK_CAPS on both ends: checksums left to the offload count as
 * verified at the peer, a TSO chain crosses whole to a peer with LRO):
 * if_offload.ts linkTransmit gives the peer's verdicts before the handoff.
 * A fault injector wrapped around this driver makes frames real first.
 */
export class CrossCpuDriver implements IfDriver {
  /** The interface of the frame being sent (linkTransmit's deliver reads it; it never nests). */
  private via: Ifnet | null = null;
  private peerIfp: Ifnet | null = null;
  private readonly deliver = (m: number): void => {
    this.netisr.dispatch(this.peerHost, this.peerIndex, this.peerIfp!, m, false, this.via!, this.drop);
  };

  constructor(
    private readonly netisr: Netisr,
    private readonly peerIf: () => NetisrIf | null,
    private readonly peerHost: number,
    private readonly peerIndex: number,
    private readonly drop: number,
  ) {}

  output(ifp: Ifnet, m: number): void {
    const peer = this.peerIf();
    if (peer === null) {
      ifp.counters[this.drop]++;
      ifp.mb.m_freem(m);
      return;
    }
    this.via = ifp;
    this.peerIfp = peer.ifp;
    linkTransmit(ifp.mb, m, peer.ifp, peer.ifp.type === IFT_ETHER ? ETH_HLEN : 0, this.deliver);
  }
}
