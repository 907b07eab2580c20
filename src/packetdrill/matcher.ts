/**
 * Packet mapping and matching, as packetdrill's run_packet.c defines them:
 * script packets are turned into live datagrams to inject (inbound) and live
 * datagrams the stack sent are mapped back into script space and compared
 * field by field with the script's expectation (outbound), in the dialect's
 * order and with its wording ("live packet field tcp_seq: expected: 1 (0x1)
 * vs actual: 2 (0x2)", "bad outbound TCP options", ...).
 */
import type { PacketSpec, TcpOption, TcpSpec } from './ast.js';
import { PdConn, u32 } from './conn.js';
import type { Endpoint } from './tcpapi.js';
import { buildIcmp, buildTcp, ipChecksumOk, tcpChecksumOk, IPPROTO_TCP, IPPROTO_UDP, tcpFlagsFrom, type TcpFields, type WirePacket } from './packet.js';
import { tcpOptionLength } from './parser.js';
import { icmpTypeCode } from './symbols.js';

/** packetdrill's TTL_CHECK_NONE: the TTL a script packet gets when it names none (not checked outbound). */
export const TTL_CHECK_NONE = 255;

/** The script's TCP packet as a WirePacket in script space (for comparison and printing). */
export function scriptWire(spec: PacketSpec): WirePacket {
  const t = spec.tcp!;
  const opts = t.options ?? [];
  const optBytes = opts.reduce((n, o) => n + tcpOptionLength(o), 0);
  const encap = t.udpSrc !== 0 || t.udpDst !== 0;
  const tcp: TcpFields = {
    srcPort: t.srcPort,
    dstPort: t.dstPort,
    seq: t.seq,
    ack: t.ack,
    doff: (20 + optBytes) / 4,
    res1: 0,
    ...tcpFlagsFrom(t.flags),
    win: t.win < 0 ? 0 : t.win,
    sum: 0,
    urgPtr: t.urg,
    options: opts,
    payload: new Uint8Array(t.len),
  };
  return {
    ip: {
      version: 4,
      ihl: 5,
      tos: spec.ip.tos,
      totalLen: 20 + (encap ? 8 : 0) + 20 + optBytes + t.len,
      id: 0,
      off: 0,
      ttl: spec.ip.ttl < 0 ? TTL_CHECK_NONE : spec.ip.ttl,
      proto: encap ? IPPROTO_UDP : IPPROTO_TCP,
      sum: 0,
      src: 0,
      dst: 0,
    },
    udp: encap ? { srcPort: t.udpSrc, dstPort: t.udpDst } : null,
    tcp,
    icmp: null,
  };
}

function offsetSack(opts: readonly TcpOption[], off: number): TcpOption[] {
  return opts.map((o) => (o.kind === 'sack' ? { kind: 'sack', blocks: o.blocks.map(([l, r]) => [u32(l + off), u32(r + off)] as [number, number]) } : o));
}

/**
 * An inbound script packet as the live datagram to inject (map_inbound_packet):
 * endpoints of the socket under test, sequence/ack/SACK numbers moved into
 * live space, TS ecr translated through the TS val map. Returns the bytes or
 * an error string.
 */
export function buildInbound(conn: PdConn, spec: PacketSpec, tuple: { local: Endpoint; remote: Endpoint } = conn): Uint8Array | string {
  const ttl = spec.ip.ttl < 0 ? TTL_CHECK_NONE : spec.ip.ttl;
  if (spec.icmp !== null) {
    const tc = icmpTypeCode(spec.icmp.type, spec.icmp.code);
    if (typeof tc === 'string') return tc;
    return buildIcmp({
      src: tuple.remote.addr,
      dst: tuple.local.addr,
      tos: spec.ip.tos,
      ttl,
      type: tc.type,
      code: tc.code,
      mtu: spec.icmp.mtu,
      quote: {
        src: tuple.local.addr,
        dst: tuple.remote.addr,
        proto: spec.icmp.echoedProto === 'tcp' ? IPPROTO_TCP : IPPROTO_UDP,
        srcPort: tuple.local.port,
        dstPort: tuple.remote.port,
        seq: u32(spec.icmp.echoedSeq + conn.localScriptToLive(false)),
        payloadLen: spec.icmp.echoedLen,
      },
    });
  }
  const t = spec.tcp!;
  const f = tcpFlagsFrom(t.flags);
  const seq = t.absSeq ? t.seq : u32(t.seq + conn.remoteScriptToLive(f.syn));
  const ackOff = conn.localScriptToLive(f.syn);
  const ack = f.ackf ? u32(t.ack + ackOff) : t.ack;
  let options = offsetSack(t.options ?? [], ackOff);
  if (!t.absTsEcr && f.ackf) {
    for (let k = 0; k < options.length; k++) {
      const o = options[k];
      if (o.kind !== 'ts') continue;
      const live = conn.tsValMap.get(o.ecr);
      if (live === undefined) return `unable to find mapping for timestamp ecr ${o.ecr}`;
      options = options.slice();
      options[k] = { kind: 'ts', val: o.val, ecr: live };
    }
  }
  const encap = t.udpSrc !== 0 || t.udpDst !== 0;
  return buildTcp({
    src: tuple.remote.addr,
    dst: tuple.local.addr,
    tos: spec.ip.tos,
    ttl,
    udp: encap ? { srcPort: t.udpSrc, dstPort: t.udpDst } : null,
    tcp: { srcPort: tuple.remote.port, dstPort: tuple.local.port, seq, ack, ...f, win: t.win, urgPtr: t.urg, options, payload: new Uint8Array(t.len) },
  });
}

/**
 * A live outbound packet mapped into script space (map_outbound_live_packet):
 * sequence, ack and SACK numbers relative to the script's ISNs, the TS val
 * rebased on the first one seen (and the script->live TS val pair remembered
 * for inbound ecr values). Mutates the conn's TS state.
 */
export function mapOutbound(conn: PdConn, live: WirePacket, t: TcpSpec): WirePacket {
  const lt = live.tcp!;
  const seqOff = u32(-conn.localScriptToLive(lt.syn));
  const ackOff = u32(-conn.remoteScriptToLive(lt.syn));
  const tcp: TcpFields = { ...lt };
  tcp.seq = t.absSeq ? lt.seq : u32(lt.seq + seqOff);
  if (lt.ackf) tcp.ack = u32(lt.ack + ackOff);
  tcp.options = offsetSack(lt.options, ackOff);
  const sTs = (t.options ?? []).find((o) => o.kind === 'ts');
  const aIdx = tcp.options.findIndex((o) => o.kind === 'ts');
  if (sTs !== undefined && sTs.kind === 'ts' && aIdx >= 0) {
    const a = tcp.options[aIdx] as { kind: 'ts'; val: number; ecr: number };
    if (!t.ignoreTsVal) conn.tsValMap.set(sTs.val, a.val);
    if (conn.firstTs === null) conn.firstTs = { script: sTs.val, actual: a.val };
    tcp.options = tcp.options.slice();
    tcp.options[aIdx] = { kind: 'ts', val: u32(conn.firstTs.script + (a.val - conn.firstTs.actual)), ecr: a.ecr };
  }
  return { ...live, tcp };
}

const hex = (v: number) => v.toString(16);

/** check_field's wording. */
function field(name: string, expected: number, actual: number): string | null {
  return expected === actual ? null : `live packet field ${name}: expected: ${expected} (0x${hex(expected)}) vs actual: ${actual} (0x${hex(actual)})`;
}

function checkTos(spec: PacketSpec, actual: number): string | null {
  const want = spec.ip.tos;
  const ecn = actual & 3;
  switch (spec.ip.tosCheck) {
    case 'none':
      return null;
    case 'tos':
      return field('tos', want, actual);
    case 'ecn':
      return field('ecn', want & 3, ecn);
    case 'dscp':
      return field('dscp', want >> 2, actual >> 2);
    case 'ect01':
    case 'dscp_ect01':
      if (ecn !== 1 && ecn !== 2) return `live packet field ip_ecn: expected: 0x1 or 0x2 vs actual: 0x${hex(ecn)}`;
      return spec.ip.tosCheck === 'dscp_ect01' ? field('dscp', want >> 2, actual >> 2) : null;
  }
}

export interface VerifyContext {
  /** --tcp_ts_tick_usecs (0: TS val not checked) and the tolerance for it. */
  tsTickUsecs: number;
  toleranceUsecs: number;
}

/**
 * Compare a live packet (already mapped into script space) with the script's
 * expectation. Returns packetdrill's first mismatch message, or null when
 * they match. `liveBytes` is the datagram as sent (for the IP checksum).
 */
export function verifyOutbound(spec: PacketSpec, script: WirePacket, actual: WirePacket, liveBytes: Uint8Array, ctx: VerifyContext): string | null {
  if (!ipChecksumOk(liveBytes)) return 'bad outbound IP checksum';
  // packetdrill leaves the TCP checksum unchecked (offload); nothing here offloads it, so a bad one is a bug.
  if (actual.tcp !== null && !tcpChecksumOk(liveBytes)) return 'bad outbound TCP checksum';
  const t = spec.tcp!;
  const st = script.tcp!;
  const at = actual.tcp;
  const sLayers = script.udp === null ? 2 : 3;
  const aLayers = at === null ? 2 : actual.udp === null ? 2 : 3;
  if (sLayers !== aLayers) return `live packet header layers: expected: ${sLayers} headers vs actual: ${aLayers} headers`;
  if (at === null) return `live packet header layer 1: expected: tcp header vs actual: ${actual.icmp !== null ? 'icmpv4' : 'unknown'} header`;
  const allowance = t.options === null ? at.options.reduce((n, o) => n + tcpOptionLength(o), 0) : 0;
  const e =
    field('ipv4_version', 4, actual.ip.version) ??
    field('ipv4_protocol', script.ip.proto, actual.ip.proto) ??
    field('ipv4_header_length', 5, actual.ip.ihl) ??
    field('ipv4_total_length', script.ip.totalLen + allowance, actual.ip.totalLen) ??
    checkTos(spec, actual.ip.tos) ??
    (spec.ip.ttl >= 0 ? field('ttl', spec.ip.ttl, actual.ip.ttl) : null) ??
    (script.udp !== null && actual.udp !== null
      ? field('udp_src_port', script.udp.srcPort, actual.udp.srcPort) ?? field('udp_dst_port', script.udp.dstPort, actual.udp.dstPort)
      : null) ??
    field('tcp_data_offset', st.doff + allowance / 4, at.doff) ??
    field('tcp_fin', +st.fin, +at.fin) ??
    field('tcp_syn', +st.syn, +at.syn) ??
    field('tcp_rst', +st.rst, +at.rst) ??
    field('tcp_psh', +st.psh, +at.psh) ??
    field('tcp_ack', +st.ackf, +at.ackf) ??
    field('tcp_urg', +st.urgf, +at.urgf) ??
    field('tcp_ece', +st.ece, +at.ece) ??
    field('tcp_cwr', +st.cwr, +at.cwr) ??
    field('tcp_ae', +st.ae, +at.ae) ??
    field('tcp_reserved_bits', 0, at.res1) ??
    (t.ignoreSeq ? null : field('tcp_seq', st.seq, at.seq)) ??
    field('tcp_ack_seq', st.ack, at.ack) ??
    (t.win < 0 ? null : field('tcp_window', st.win, at.win)) ??
    field('tcp_urg_ptr', st.urgPtr, at.urgPtr);
  if (e !== null) return e;
  if (t.options !== null) {
    const so = t.options;
    const ao = at.options;
    for (let k = 0; k < Math.max(so.length, ao.length); k++) {
      const s = so[k];
      const a = ao[k];
      if (s === undefined || a === undefined || s.kind !== a.kind) return 'bad outbound TCP options';
      const err = optionMismatch(s, a, ctx);
      if (err !== null) return err;
    }
  }
  for (let k = 0; k < at.payload.length; k++) if (at.payload[k] !== st.payload[k]) return 'incorrect outbound data payload';
  return null;
}

const OPTION_KIND: Record<TcpOption['kind'], number> = { eol: 0, nop: 1, mss: 2, wscale: 3, sackOK: 4, sack: 5, ts: 8, fo: 34, generic: -1 };

function optionMismatch(s: TcpOption, a: TcpOption, ctx: VerifyContext): string | null {
  const kind = s.kind === 'generic' ? s.code : OPTION_KIND[s.kind];
  switch (s.kind) {
    case 'eol':
    case 'nop':
      return null;
    case 'ts': {
      const at = a as typeof s;
      if (ctx.tsTickUsecs > 0 && Math.abs((at.val - s.val) | 0) * ctx.tsTickUsecs > ctx.toleranceUsecs) return `bad outbound TCP timestamp value, tolerance ${ctx.toleranceUsecs}`;
      return null;
    }
    default: {
      if (tcpOptionLength(s) !== tcpOptionLength(a)) return `bad lengths for outbound TCP option ${kind}`;
      if (JSON.stringify(optionData(s)) !== JSON.stringify(optionData(a))) return `bad value outbound TCP option ${kind}`;
      return null;
    }
  }
}

function optionData(o: TcpOption): unknown {
  switch (o.kind) {
    case 'mss':
      return o.mss;
    case 'wscale':
      return o.shift;
    case 'sack':
      return o.blocks;
    case 'fo':
      return Array.from(o.cookie);
    case 'generic':
      return [o.code, Array.from(o.data)];
    default:
      return null;
  }
}
