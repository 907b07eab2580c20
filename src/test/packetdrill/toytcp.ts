/**
 * A deliberately small TCP for the runner's own tests (the stack's TCP is
 * written elsewhere): enough of RFC 793 to open, move data and close, with a
 * SYN(-ACK) retransmission timer on the thread's callouts. Segments leave
 * through the real stack (ipOutput -> interface -> the runner's capture) and
 * arrive through PdNet's input tap. Behaviour knobs let tests make it send
 * what a script does or does not expect.
 */
import type { PdNet } from '../../packetdrill/netif.js';
import type { Endpoint, PdSocket, PdTcp, SockstatRow, TcpInfo } from '../../packetdrill/tcpapi.js';
import { decodePacket, encodeTcpOptions } from '../../packetdrill/packet.js';
import type { TcpOption } from '../../packetdrill/ast.js';
import { EAGAIN, EINPROGRESS, EINVAL, ENOTCONN, ECONNRESET } from '../../kern/errno.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { M_DATA, M_LEN, M_PKTHDR, MT_DATA, PH_LEN } from '../../kern/mbuf/layout.js';
import { cksumAdd, cksumFinish, pseudoHeaderSum } from '../../wire/checksum.js';
import { TCP_STATES } from '../../packetdrill/symbols.js';
import type { Callout } from '../../kern/lwkt/callout.js';

const S = Object.fromEntries(TCP_STATES.map((s, i) => [s, i])) as Record<(typeof TCP_STATES)[number], number>;

export interface ToyKnobs {
  /** Initial sequence number of every connection. */
  isn: number;
  /** SYN / SYN-ACK retransmission timeout, ms (doubles each time). */
  rtoMs: number;
  /** Options on our SYN (active open). */
  synOptions: TcpOption[];
  /** Options on our SYN-ACK (passive open). */
  synAckOptions: TcpOption[];
  window: number;
  /** Milliseconds between TS val ticks' origin and the clock (TS val = now + tsOffset). */
  tsOffset: number;
}

export const DEFAULT_KNOBS: ToyKnobs = {
  isn: 1_000_000,
  rtoMs: 1000,
  synOptions: [{ kind: 'mss', mss: 1460 }, { kind: 'nop' }, { kind: 'wscale', shift: 6 }, { kind: 'sackOK' }, { kind: 'ts', val: 0, ecr: 0 }],
  synAckOptions: [{ kind: 'mss', mss: 1460 }, { kind: 'sackOK' }, { kind: 'eol' }, { kind: 'eol' }],
  window: 65535,
  tsOffset: 5000,
};

class Conn {
  state = S.CLOSED;
  local: Endpoint = { addr: 0, port: 0 };
  remote: Endpoint | null = null;
  sndUna = 0;
  sndNxt = 0;
  rcvNxt = 0;
  rcvBuf: number[] = [];
  gotFin = false;
  soError = 0;
  listener: Conn | null = null;
  acceptQ: Conn[] = [];
  rexmit: Callout | null = null;
  rexmitShift = 0;
  hasSocket = true;
}

export class ToyTcp implements PdTcp {
  readonly conns: Conn[] = [];
  private nextPort = 40000;
  constructor(
    private readonly net: PdNet,
    readonly knobs: ToyKnobs = DEFAULT_KNOBS,
  ) {
    net.inputTap = (ip) => this.input(ip);
  }

  socket(): PdSocket | number {
    const c = new Conn();
    this.conns.push(c);
    return new ToySocket(this, c);
  }

  sockstat(): SockstatRow[] {
    const names = TCP_STATES.map((s) => (s === 'SYN_RECEIVED' ? 'SYN_RCVD' : s));
    return this.conns
      .filter((c) => c.local.port !== 0)
      .map((c) => ({ local: c.local, foreign: c.remote, state: names[c.state], hasSocket: c.hasSocket }));
  }

  drop(l: Endpoint, f: Endpoint): number {
    const c = this.conns.find((x) => x.remote !== null && x.local.port === l.port && x.remote.port === f.port);
    if (c === undefined) return 3; // ESRCH
    this.send(c, 'R.', c.sndNxt, []);
    this.teardown(c);
    return 0;
  }

  now(): number {
    return this.net.now();
  }

  /** Send one segment through the stack's IP output. */
  send(c: Conn, flags: string, seq: number, opts: TcpOption[], payload: Uint8Array = new Uint8Array(0)): void {
    const mb = this.net.stack.mb;
    const optBytes = encodeTcpOptions(opts.map((o) => (o.kind === 'ts' ? { kind: 'ts', val: Math.floor(this.now()) + this.knobs.tsOffset, ecr: o.ecr } : o)));
    const hlen = 20 + optBytes.length;
    const len = hlen + payload.length;
    const seg = new Uint8Array(len);
    const v = new DataView(seg.buffer);
    v.setUint16(0, c.local.port);
    v.setUint16(2, c.remote!.port);
    v.setUint32(4, seq >>> 0);
    const ack = flags.includes('.');
    v.setUint32(8, ack ? c.rcvNxt >>> 0 : 0);
    seg[12] = (hlen / 4) << 4;
    seg[13] = (flags.includes('F') ? 1 : 0) | (flags.includes('S') ? 2 : 0) | (flags.includes('R') ? 4 : 0) | (flags.includes('P') ? 8 : 0) | (ack ? 16 : 0);
    v.setUint16(14, flags.includes('R') ? 0 : this.knobs.window);
    seg.set(optBytes, 20);
    seg.set(payload, hlen);
    v.setUint16(16, cksumFinish(cksumAdd(seg, 0, len, pseudoHeaderSum(c.local.addr, c.remote!.addr, 6, len))));
    const m = mb.m_getcl(M_NOWAIT, MT_DATA, M_PKTHDR);
    const d = mb.i32[(m + M_DATA) >> 2] + 64;
    mb.i32[(m + M_DATA) >> 2] = d;
    mb.u8.set(seg, d);
    mb.i32[(m + M_LEN) >> 2] = len;
    mb.i32[(m + PH_LEN) >> 2] = len;
    this.net.stack.ipOutput(m, c.local.addr, c.remote!.addr, 6, { ttl: 64, tos: 0, df: true });
  }

  private armRexmit(c: Conn, fn: () => void): void {
    c.rexmit ??= this.net.td.callouts.callout();
    c.rexmit.reset(this.knobs.rtoMs * 2 ** c.rexmitShift, () => {
      c.rexmitShift++;
      fn();
    });
  }

  teardown(c: Conn): void {
    c.rexmit?.stop();
    c.state = S.CLOSED;
    if (!c.hasSocket) this.conns.splice(this.conns.indexOf(c), 1);
  }

  sendSyn(c: Conn): void {
    this.send(c, 'S', c.sndUna, this.knobs.synOptions);
    this.armRexmit(c, () => this.sendSyn(c));
  }

  private sendSynAck(c: Conn): void {
    this.send(c, 'S.', c.sndUna, this.knobs.synAckOptions);
    this.armRexmit(c, () => this.sendSynAck(c));
  }

  private input(ip: Uint8Array): boolean {
    const p = decodePacket(ip);
    if (typeof p === 'string' || p.tcp === null) return false;
    const t = p.tcp;
    const c =
      this.conns.find((x) => x.remote !== null && x.local.port === t.dstPort && x.remote.port === t.srcPort && x.remote.addr === p.ip.src) ??
      this.conns.find((x) => x.state === S.LISTEN && x.local.port === t.dstPort);
    if (c === undefined) {
      if (!t.rst) {
        const tmp = new Conn();
        tmp.local = { addr: p.ip.dst, port: t.dstPort };
        tmp.remote = { addr: p.ip.src, port: t.srcPort };
        if (t.ackf) this.send(tmp, 'R', t.ack, []);
        else {
          tmp.rcvNxt = (t.seq + t.payload.length + (t.syn ? 1 : 0) + (t.fin ? 1 : 0)) >>> 0;
          this.send(tmp, 'R.', 0, []);
        }
      }
      return true;
    }
    if (c.state === S.LISTEN) {
      if (!t.syn || t.ackf || t.rst) return true;
      const n = new Conn();
      n.hasSocket = false;
      n.listener = c;
      n.local = { addr: p.ip.dst, port: t.dstPort };
      n.remote = { addr: p.ip.src, port: t.srcPort };
      n.state = S.SYN_RECEIVED;
      n.rcvNxt = (t.seq + 1) >>> 0;
      n.sndUna = this.knobs.isn;
      n.sndNxt = (this.knobs.isn + 1) >>> 0;
      this.conns.push(n);
      this.sendSynAck(n);
      return true;
    }
    if (t.rst) {
      c.soError = c.state === S.SYN_SENT ? 61 : ECONNRESET;
      this.teardown(c);
      return true;
    }
    if (c.state === S.SYN_SENT) {
      if (t.syn && t.ackf && t.ack === c.sndNxt) {
        c.rexmit?.stop();
        c.rcvNxt = (t.seq + 1) >>> 0;
        c.sndUna = t.ack;
        c.state = S.ESTABLISHED;
        this.send(c, '.', c.sndNxt, []);
      }
      return true;
    }
    if (t.ackf && c.state === S.SYN_RECEIVED && t.ack === c.sndNxt) {
      c.rexmit?.stop();
      c.state = S.ESTABLISHED;
      c.sndUna = t.ack;
      c.listener?.acceptQ.push(c);
    }
    if (t.ackf) c.sndUna = t.ack;
    if (c.state === S.FIN_WAIT_1 && t.ackf && t.ack === c.sndNxt) c.state = S.FIN_WAIT_2;
    if (c.state === S.LAST_ACK && t.ackf && t.ack === c.sndNxt) {
      this.teardown(c);
      return true;
    }
    if (t.seq === c.rcvNxt && (t.payload.length > 0 || t.fin)) {
      c.rcvBuf.push(...t.payload);
      c.rcvNxt = (c.rcvNxt + t.payload.length) >>> 0;
      if (t.fin) {
        c.rcvNxt = (c.rcvNxt + 1) >>> 0;
        c.gotFin = true;
        if (c.state === S.ESTABLISHED) c.state = S.CLOSE_WAIT;
        else if (c.state === S.FIN_WAIT_2) c.state = S.TIME_WAIT;
        else if (c.state === S.FIN_WAIT_1) c.state = S.CLOSING;
      }
      this.send(c, '.', c.sndNxt, []);
    }
    return true;
  }
}

class ToySocket implements PdSocket {
  private nonblockAccept = true;
  constructor(
    private readonly tcp: ToyTcp,
    private readonly c: Conn,
  ) {}
  bind(local: Endpoint): number {
    this.c.local = local;
    return 0;
  }
  listen(): number {
    if (this.c.local.port === 0) return EINVAL;
    this.c.state = S.LISTEN;
    return 0;
  }
  accept(): { so: PdSocket; peer: Endpoint } | number {
    void this.nonblockAccept;
    const n = this.c.acceptQ.shift();
    if (n === undefined) return EAGAIN;
    n.hasSocket = true;
    return { so: new ToySocket(this.tcp, n), peer: n.remote! };
  }
  connect(remote: Endpoint): number {
    const c = this.c;
    if (c.local.port === 0) c.local = { addr: 0xc0a80001, port: 40000 + this.tcp.conns.length };
    c.remote = remote;
    c.state = S.SYN_SENT;
    c.sndUna = this.tcp.knobs.isn;
    c.sndNxt = (this.tcp.knobs.isn + 1) >>> 0;
    this.tcp.sendSyn(c);
    return EINPROGRESS;
  }
  connectStatus(): number {
    if (this.c.state === S.SYN_SENT) return EINPROGRESS;
    if (this.c.soError !== 0) {
      const e = this.c.soError;
      this.c.soError = 0;
      return e;
    }
    return 0;
  }
  send(data: Uint8Array): number {
    const c = this.c;
    if (c.state !== S.ESTABLISHED && c.state !== S.CLOSE_WAIT) return -ENOTCONN;
    this.tcp.send(c, 'P.', c.sndNxt, [], data);
    c.sndNxt = (c.sndNxt + data.length) >>> 0;
    return data.length;
  }
  recv(len: number, flags: number): Uint8Array | number {
    const c = this.c;
    if (c.rcvBuf.length === 0) return c.gotFin ? new Uint8Array(0) : -EAGAIN;
    const n = Math.min(len, c.rcvBuf.length);
    const out = Uint8Array.from(c.rcvBuf.slice(0, n));
    if ((flags & 2) === 0) c.rcvBuf.splice(0, n);
    return out;
  }
  shutdown(): number {
    return this.fin();
  }
  private fin(): number {
    const c = this.c;
    if (c.state === S.ESTABLISHED || c.state === S.CLOSE_WAIT) {
      this.tcp.send(c, 'F.', c.sndNxt, []);
      c.sndNxt = (c.sndNxt + 1) >>> 0;
      c.state = c.state === S.ESTABLISHED ? S.FIN_WAIT_1 : S.LAST_ACK;
    }
    return 0;
  }
  close(): number {
    this.fin();
    const c = this.c;
    c.hasSocket = false;
    if (c.state === S.CLOSED || c.state === S.LISTEN || c.state === S.SYN_SENT) this.tcp.teardown(c);
    return 0;
  }
  getsockopt(level: number, name: number): number {
    if (level === 0xffff && name === 0x1007) {
      const e = this.c.soError;
      this.c.soError = 0;
      return e;
    }
    if (level === 0xffff && name === 0x1002) return 65536;
    return -42;
  }
  getsockoptPair(): [number, number] | number {
    return [0, 0];
  }
  setsockopt(): number {
    return 0;
  }
  poll(): number {
    const c = this.c;
    let ev = 0;
    if (c.rcvBuf.length > 0 || c.gotFin || c.acceptQ.length > 0) ev |= 0x1;
    if (c.state === S.ESTABLISHED || c.state === S.CLOSE_WAIT) ev |= 0x4;
    if (c.soError !== 0) ev |= 0x8;
    return ev;
  }
  tcpInfo(): TcpInfo | number {
    return { tcpi_state: this.c.state, tcpi_options: 0, tcpi_snd_mss: 1460 };
  }
}
