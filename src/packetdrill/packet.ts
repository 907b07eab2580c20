/**
 * Packet builder and decoder for the runner: IPv4 datagrams carrying TCP
 * (optionally UDP-encapsulated, RFC 8229-style as FreeBSD's
 * net.inet.tcp.udp_tunneling_port does) or ICMP, to and from byte arrays.
 *
 * Script packets and live packets both become a WirePacket, so the matcher
 * compares like with like and the report prints both the same way
 * (packetToString: packetdrill's short dump format).
 *
 * This is a test tool, not the packet path: it allocates freely.
 */
import { cksum, cksumAdd, cksumFinish, pseudoHeaderSum } from '../wire/checksum.js';
import { ipToString } from '../wire/ipv4.js';
import type { TcpOption } from './ast.js';

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

export const TCPOPT_EOL = 0;
export const TCPOPT_NOP = 1;
export const TCPOPT_MAXSEG = 2;
export const TCPOPT_WINDOW = 3;
export const TCPOPT_SACK_PERMITTED = 4;
export const TCPOPT_SACK = 5;
export const TCPOPT_TIMESTAMP = 8;
export const TCPOPT_FAST_OPEN = 34;

export interface IpFields {
  version: number;
  ihl: number;
  tos: number;
  totalLen: number;
  id: number;
  off: number;
  ttl: number;
  proto: number;
  sum: number;
  src: number;
  dst: number;
}

export interface TcpFields {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** Data offset in 32-bit words. */
  doff: number;
  res1: number;
  fin: boolean;
  syn: boolean;
  rst: boolean;
  psh: boolean;
  ackf: boolean;
  urgf: boolean;
  ece: boolean;
  cwr: boolean;
  ae: boolean;
  win: number;
  sum: number;
  urgPtr: number;
  options: TcpOption[];
  payload: Uint8Array;
}

export interface IcmpFields {
  type: number;
  code: number;
  /** Next-hop MTU (unreachable / fragmentation needed), else 0. */
  mtu: number;
  /** The quoted datagram (IP header + first bytes). */
  quoted: Uint8Array;
}

export interface WirePacket {
  ip: IpFields;
  /** UDP encapsulation of TCP: the outer UDP ports. */
  udp: { srcPort: number; dstPort: number } | null;
  tcp: TcpFields | null;
  icmp: IcmpFields | null;
}

/** Empty TCP fields with the given flags letters (".FSRPEWAU"). */
export function tcpFlagsFrom(flags: string): Pick<TcpFields, 'fin' | 'syn' | 'rst' | 'psh' | 'ackf' | 'urgf' | 'ece' | 'cwr' | 'ae'> {
  return {
    fin: flags.includes('F'),
    syn: flags.includes('S'),
    rst: flags.includes('R'),
    psh: flags.includes('P'),
    ackf: flags.includes('.'),
    urgf: flags.includes('U'),
    ece: flags.includes('E'),
    cwr: flags.includes('W'),
    ae: flags.includes('A'),
  };
}

// ------------------------------------------------------------ options

/** Encode TCP options into bytes (no padding added: the script pads). */
export function encodeTcpOptions(opts: readonly TcpOption[]): Uint8Array {
  const out: number[] = [];
  const be16 = (v: number) => out.push((v >>> 8) & 255, v & 255);
  const be32 = (v: number) => out.push((v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
  for (const o of opts) {
    switch (o.kind) {
      case 'eol':
        out.push(TCPOPT_EOL);
        break;
      case 'nop':
        out.push(TCPOPT_NOP);
        break;
      case 'mss':
        out.push(TCPOPT_MAXSEG, 4);
        be16(o.mss);
        break;
      case 'wscale':
        out.push(TCPOPT_WINDOW, 3, o.shift);
        break;
      case 'sackOK':
        out.push(TCPOPT_SACK_PERMITTED, 2);
        break;
      case 'sack':
        out.push(TCPOPT_SACK, 2 + 8 * o.blocks.length);
        for (const [l, r] of o.blocks) {
          be32(l);
          be32(r);
        }
        break;
      case 'ts':
        out.push(TCPOPT_TIMESTAMP, 10);
        be32(o.val);
        be32(o.ecr);
        break;
      case 'fo':
        out.push(TCPOPT_FAST_OPEN, 2 + o.cookie.length, ...o.cookie);
        break;
      case 'generic':
        out.push(o.code, 2 + o.data.length, ...o.data);
        break;
    }
  }
  return Uint8Array.from(out);
}

/** Decode TCP option bytes. Returns the options or an error string (bad length). */
export function decodeTcpOptions(b: Uint8Array): TcpOption[] | string {
  const out: TcpOption[] = [];
  const be16 = (i: number) => (b[i] << 8) | b[i + 1];
  const be32 = (i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
  let i = 0;
  while (i < b.length) {
    const kind = b[i];
    if (kind === TCPOPT_EOL) {
      out.push({ kind: 'eol' });
      i++;
      continue;
    }
    if (kind === TCPOPT_NOP) {
      out.push({ kind: 'nop' });
      i++;
      continue;
    }
    if (i + 1 >= b.length) return `TCP option ${kind} has no length byte`;
    const len = b[i + 1];
    if (len < 2 || i + len > b.length) return `TCP option ${kind} has bad length ${len}`;
    const bad = (want: number) => (len !== want ? `TCP option ${kind} has bad length ${len}` : null);
    let err: string | null = null;
    switch (kind) {
      case TCPOPT_MAXSEG:
        if ((err = bad(4)) === null) out.push({ kind: 'mss', mss: be16(i + 2) });
        break;
      case TCPOPT_WINDOW:
        if ((err = bad(3)) === null) out.push({ kind: 'wscale', shift: b[i + 2] });
        break;
      case TCPOPT_SACK_PERMITTED:
        if ((err = bad(2)) === null) out.push({ kind: 'sackOK' });
        break;
      case TCPOPT_SACK: {
        if ((len - 2) % 8 !== 0 || len < 10) {
          err = `TCP option ${kind} has bad length ${len}`;
          break;
        }
        const blocks: [number, number][] = [];
        for (let k = i + 2; k < i + len; k += 8) blocks.push([be32(k), be32(k + 4)]);
        out.push({ kind: 'sack', blocks });
        break;
      }
      case TCPOPT_TIMESTAMP:
        if ((err = bad(10)) === null) out.push({ kind: 'ts', val: be32(i + 2), ecr: be32(i + 6) });
        break;
      case TCPOPT_FAST_OPEN:
        out.push({ kind: 'fo', cookie: b.slice(i + 2, i + len) });
        break;
      default:
        out.push({ kind: 'generic', code: kind, data: b.slice(i + 2, i + len) });
    }
    if (err !== null) return err;
    i += len;
  }
  return out;
}

/** One option the way packetdrill prints it. */
export function tcpOptionToString(o: TcpOption): string {
  const hex = (d: Uint8Array) => Array.from(d, (x) => x.toString(16).padStart(2, '0')).join('');
  switch (o.kind) {
    case 'eol':
      return 'eol';
    case 'nop':
      return 'nop';
    case 'mss':
      return `mss ${o.mss}`;
    case 'wscale':
      return `wscale ${o.shift}`;
    case 'sackOK':
      return 'sackOK';
    case 'sack':
      return 'sack ' + o.blocks.map(([l, r]) => `${l}:${r}`).join(' ');
    case 'ts':
      return `TS val ${o.val} ecr ${o.ecr}`;
    case 'fo':
      return o.cookie.length > 0 ? `FO ${hex(o.cookie)}` : 'FO';
    case 'generic':
      return `gen-${o.code} ${hex(o.data)}`.trimEnd();
  }
}

// ------------------------------------------------------------ building

/** What a TCP segment to build needs (values already in live sequence space). */
export interface TcpBuild {
  src: number;
  dst: number;
  tos: number;
  ttl: number;
  tcp: Omit<TcpFields, 'doff' | 'sum' | 'res1'> & { res1?: number };
  /** UDP encapsulation ports, or null. */
  udp: { srcPort: number; dstPort: number } | null;
}

function ipHeader(b: Uint8Array, totalLen: number, tos: number, ttl: number, proto: number, src: number, dst: number, id = 0): void {
  const v = new DataView(b.buffer, b.byteOffset, 20);
  v.setUint8(0, 0x45);
  v.setUint8(1, tos);
  v.setUint16(2, totalLen);
  v.setUint16(4, id);
  v.setUint16(6, 0);
  v.setUint8(8, ttl);
  v.setUint8(9, proto);
  v.setUint16(10, 0);
  v.setUint32(12, src >>> 0);
  v.setUint32(16, dst >>> 0);
  v.setUint16(10, cksum(b, 0, 20));
}

/** Write a TCP header + options + payload at b[off..]; checksummed over the pseudo-header of src/dst. */
function writeTcp(b: Uint8Array, off: number, src: number, dst: number, t: TcpBuild['tcp'], opts: Uint8Array): number {
  const hlen = 20 + opts.length;
  const seglen = hlen + t.payload.length;
  const v = new DataView(b.buffer, b.byteOffset + off, seglen);
  v.setUint16(0, t.srcPort);
  v.setUint16(2, t.dstPort);
  v.setUint32(4, t.seq >>> 0);
  v.setUint32(8, t.ack >>> 0);
  const flags =
    (t.fin ? 0x01 : 0) | (t.syn ? 0x02 : 0) | (t.rst ? 0x04 : 0) | (t.psh ? 0x08 : 0) | (t.ackf ? 0x10 : 0) | (t.urgf ? 0x20 : 0) | (t.ece ? 0x40 : 0) | (t.cwr ? 0x80 : 0);
  v.setUint8(12, ((hlen / 4) << 4) | ((t.res1 ?? 0) << 1) | (t.ae ? 1 : 0));
  v.setUint8(13, flags);
  v.setUint16(14, t.win);
  v.setUint16(16, 0);
  v.setUint16(18, t.urgPtr);
  b.set(opts, off + 20);
  b.set(t.payload, off + hlen);
  v.setUint16(16, cksumFinish(cksumAdd(b, off, seglen, pseudoHeaderSum(src, dst, IPPROTO_TCP, seglen))));
  return seglen;
}

/** Build an IPv4 datagram carrying a TCP segment (checksums filled in). */
export function buildTcp(p: TcpBuild): Uint8Array {
  const opts = encodeTcpOptions(p.tcp.options);
  const seglen = 20 + opts.length + p.tcp.payload.length;
  const udpLen = p.udp === null ? 0 : 8;
  const total = 20 + udpLen + seglen;
  const b = new Uint8Array(total);
  ipHeader(b, total, p.tos, p.ttl, p.udp === null ? IPPROTO_TCP : IPPROTO_UDP, p.src, p.dst);
  writeTcp(b, 20 + udpLen, p.src, p.dst, p.tcp, opts);
  if (p.udp !== null) {
    const v = new DataView(b.buffer, 20, 8);
    v.setUint16(0, p.udp.srcPort);
    v.setUint16(2, p.udp.dstPort);
    v.setUint16(4, 8 + seglen);
    v.setUint16(6, 0); // no UDP checksum (allowed over IPv4)
  }
  return b;
}

/** What an ICMP error to build needs: the quoted datagram's header fields are filled in here. */
export interface IcmpBuild {
  src: number;
  dst: number;
  tos: number;
  ttl: number;
  type: number;
  code: number;
  mtu: number;
  /** The quoted (original outbound) datagram's addresses, protocol and transport fields. */
  quote: { src: number; dst: number; proto: number; srcPort: number; dstPort: number; seq: number; payloadLen: number };
}

/** Build an IPv4 ICMP error quoting an IP header and the first 8 transport bytes. */
export function buildIcmp(p: IcmpBuild): Uint8Array {
  const total = 20 + 8 + 20 + 8;
  const b = new Uint8Array(total);
  ipHeader(b, total, p.tos, p.ttl, IPPROTO_ICMP, p.src, p.dst);
  const q = p.quote;
  const thlen = q.proto === IPPROTO_TCP ? 20 : 8;
  ipHeader(b.subarray(28), 20 + thlen + q.payloadLen, 0, 0, q.proto, q.src, q.dst);
  const v = new DataView(b.buffer);
  v.setUint16(48, q.srcPort);
  v.setUint16(50, q.dstPort);
  if (q.proto === IPPROTO_TCP) v.setUint32(52, q.seq >>> 0);
  else v.setUint16(52, 8 + q.payloadLen);
  v.setUint8(20, p.type);
  v.setUint8(21, p.code);
  if (p.mtu >= 0) v.setUint16(26, p.mtu);
  v.setUint16(22, cksum(b, 20, total - 20));
  return b;
}

// ------------------------------------------------------------ decoding

/** Decode an IPv4 datagram. Returns the packet or an error string. */
export function decodePacket(b: Uint8Array): WirePacket | string {
  if (b.length < 20) return 'packet too short for an IPv4 header';
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const version = b[0] >> 4;
  const ihl = b[0] & 15;
  if (version !== 4) return `not IPv4 (version ${version})`;
  if (ihl < 5 || ihl * 4 > b.length) return `bad IPv4 header length ${ihl}`;
  const ip: IpFields = {
    version,
    ihl,
    tos: b[1],
    totalLen: v.getUint16(2),
    id: v.getUint16(4),
    off: v.getUint16(6),
    ttl: b[8],
    proto: b[9],
    sum: v.getUint16(10),
    src: v.getUint32(12),
    dst: v.getUint32(16),
  };
  if (ip.totalLen < ihl * 4 || ip.totalLen > b.length) return `bad IPv4 total length ${ip.totalLen}`;
  const pkt: WirePacket = { ip, udp: null, tcp: null, icmp: null };
  let off = ihl * 4;
  const end = ip.totalLen;
  if (ip.proto === IPPROTO_UDP) {
    if (end - off < 8) return 'packet too short for a UDP header';
    pkt.udp = { srcPort: v.getUint16(off), dstPort: v.getUint16(off + 2) };
    off += 8;
    const t = decodeTcp(b, off, end);
    if (typeof t === 'string') return t;
    pkt.tcp = t;
  } else if (ip.proto === IPPROTO_TCP) {
    const t = decodeTcp(b, off, end);
    if (typeof t === 'string') return t;
    pkt.tcp = t;
  } else if (ip.proto === IPPROTO_ICMP) {
    if (end - off < 8) return 'packet too short for an ICMP header';
    pkt.icmp = { type: b[off], code: b[off + 1], mtu: v.getUint16(off + 6), quoted: b.slice(off + 8, end) };
  } else return `unsupported IP protocol ${ip.proto}`;
  return pkt;
}

function decodeTcp(b: Uint8Array, off: number, end: number): TcpFields | string {
  if (end - off < 20) return 'packet too short for a TCP header';
  const v = new DataView(b.buffer, b.byteOffset + off, end - off);
  const doff = b[off + 12] >> 4;
  if (doff < 5 || off + doff * 4 > end) return `bad TCP data offset ${doff}`;
  const opts = decodeTcpOptions(b.subarray(off + 20, off + doff * 4));
  if (typeof opts === 'string') return opts;
  const f = b[off + 13];
  return {
    srcPort: v.getUint16(0),
    dstPort: v.getUint16(2),
    seq: v.getUint32(4),
    ack: v.getUint32(8),
    doff,
    res1: (b[off + 12] >> 1) & 7,
    ae: (b[off + 12] & 1) !== 0,
    fin: (f & 0x01) !== 0,
    syn: (f & 0x02) !== 0,
    rst: (f & 0x04) !== 0,
    psh: (f & 0x08) !== 0,
    ackf: (f & 0x10) !== 0,
    urgf: (f & 0x20) !== 0,
    ece: (f & 0x40) !== 0,
    cwr: (f & 0x80) !== 0,
    win: v.getUint16(14),
    sum: v.getUint16(16),
    urgPtr: v.getUint16(18),
    options: opts,
    payload: b.slice(off + doff * 4, end),
  };
}

/** True when the IPv4 header checksum of b verifies. */
export function ipChecksumOk(b: Uint8Array): boolean {
  return cksum(b, 0, (b[0] & 15) * 4) === 0;
}

// ------------------------------------------------------------ printing

/** Flags in tcpdump's order, as packetdrill prints them. */
export function tcpFlagsToString(t: Pick<TcpFields, 'fin' | 'syn' | 'rst' | 'psh' | 'ackf' | 'urgf' | 'ece' | 'cwr' | 'ae'>): string {
  return (t.fin ? 'F' : '') + (t.syn ? 'S' : '') + (t.rst ? 'R' : '') + (t.psh ? 'P' : '') + (t.ackf ? '.' : '') + (t.urgf ? 'U' : '') + (t.ece ? 'E' : '') + (t.cwr ? 'W' : '') + (t.ae ? 'A' : '');
}

/**
 * packetdrill's short dump of a packet: "S. 0:0(0) ack 1 win 65535 <mss 1460>"
 * for TCP (`showWin` false when the script does not check the window),
 * "icmp type T code C" for ICMP; IP tos/ttl in front when asked.
 */
export function packetToString(p: WirePacket, o: { showWin?: boolean; ipInfo?: boolean } = {}): string {
  let s = '';
  if (o.ipInfo) s += `(tos 0x${p.ip.tos.toString(16)}, ttl ${p.ip.ttl}) `;
  if (p.tcp !== null) {
    const t = p.tcp;
    s += `${tcpFlagsToString(t)} ${t.seq}:${(t.seq + t.payload.length) >>> 0}(${t.payload.length})`;
    if (t.ackf) s += ` ack ${t.ack}`;
    if (o.showWin !== false) s += ` win ${t.win}`;
    if (t.urgf) s += ` urg ${t.urgPtr}`;
    if (t.options.length > 0) s += ` <${t.options.map(tcpOptionToString).join(',')}>`;
    if (p.udp !== null) s += `/udp(${p.udp.srcPort} > ${p.udp.dstPort})`;
  } else if (p.icmp !== null) s += `icmp type ${p.icmp.type} code ${p.icmp.code}`;
  return s;
}

/** "a.b.c.d:port > a.b.c.d:port" for a TCP packet. */
export function endpointsToString(p: WirePacket): string {
  const t = p.tcp;
  return t === null ? `${ipToString(p.ip.src)} > ${ipToString(p.ip.dst)}` : `${ipToString(p.ip.src)}:${t.srcPort} > ${ipToString(p.ip.dst)}:${t.dstPort}`;
}

/**
 * True when the TCP checksum of an IPv4 datagram b verifies (over the
 * pseudo-header; for UDP-encapsulated TCP, over the inner segment).
 */
export function tcpChecksumOk(b: Uint8Array): boolean {
  const ihl = (b[0] & 15) * 4;
  const total = (b[2] << 8) | b[3];
  const off = b[9] === IPPROTO_UDP ? ihl + 8 : ihl;
  const src = ((b[12] << 24) | (b[13] << 16) | (b[14] << 8) | b[15]) >>> 0;
  const dst = ((b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19]) >>> 0;
  const seglen = total - off;
  if (seglen < 20) return false;
  return cksumFinish(cksumAdd(b, off, seglen, pseudoHeaderSum(src, dst, IPPROTO_TCP, seglen))) === 0;
}
