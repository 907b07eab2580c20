/**
 * The CPU side of the control socket (src/kern/ctl/): the few reports whose
 * state is thread-local on each CPU and not in the arena (the routing table,
 * the ARP cache) and starting or stopping a pcap capture of a host's
 * interfaces on this CPU. Registered by the stack's handler module
 * (mpnet.ts) with its per-CPU host list; everything else the control
 * socket serves is read from the arena by the main thread, so these
 * messages are the only work a control request ever gives a CPU.
 *
 * Commands (numeric arguments; rows go back in the message payload):
 *   NET_CTL_ROUTES(host, start) -> total, n   rows of CTL_ROUTE_WORDS ints: dst, prefix, gateway, interface position
 *   NET_CTL_ARP(host, start) -> total, n      rows of CTL_ARP_WORDS ints: ip, mac hi, mac lo, seconds to expiry
 *                                             (-1 permanent), flags (1 incomplete), interface position
 *   NET_CTL_PCAP(host, on, snaplen) -> packets  on=1: capture every interface of the host on this CPU to the
 *                                             path in the payload (NUL-terminated UTF-8); on=0: stop and
 *                                             return the packets written
 *   NET_CTL_TCPLIST(host, start) -> total, n  this CPU's TCP PCBs, rows of CTL_TCP_WORDS ints: laddr, lport,
 *                                             faddr, fport, state, recv-q, send-q
 *   NET_CTL_TCPSTATS(host, start) -> total, n  this CPU's tcpstat counters from index `start`: n Float64 in the payload
 *   NET_CTL_TCPDROP(host, laddr, lport, faddr, fport)  tcpdrop on this CPU: 0, or ESRCH when it has no such
 *                                             connection
 * Handlers take no lock, allocate only the reply rows and never sleep
 * (opening or flushing a capture file blocks on the file system).
 */
import type { ProtocolThread } from '../kern/lwkt/protothread.js';
import { EINVAL, ENOENT, EBADF, EBUSY, ESRCH } from '../kern/errno.js';
import { MSG_PAYLOAD_MAX } from '../kern/lwkt/layout.js';
import type { Stack } from '../netinet/stack.js';
import { PcapWriter } from './phy/pcap.js';

export const NET_CTL_ROUTES = 0x5180;
export const NET_CTL_ARP = 0x5181;
export const NET_CTL_PCAP = 0x5182;
export const NET_CTL_TCPLIST = 0x5183;
export const NET_CTL_TCPDROP = 0x5184;
export const NET_CTL_TCPSTATS = 0x5185;
/** tcpstat counters per NET_CTL_TCPSTATS reply. */
export const CTL_TCPSTAT_SLOTS = Math.floor(MSG_PAYLOAD_MAX / 8);

export const CTL_ROUTE_WORDS = 4;
export const CTL_ARP_WORDS = 6;
export const CTL_TCP_WORDS = 7;
export const CTL_TCP_ROWS = Math.floor(MSG_PAYLOAD_MAX / 4 / CTL_TCP_WORDS);
export const CTL_ROUTE_ROWS = Math.floor(MSG_PAYLOAD_MAX / 4 / CTL_ROUTE_WORDS);
export const CTL_ARP_ROWS = Math.floor(MSG_PAYLOAD_MAX / 4 / CTL_ARP_WORDS);

/** What the handlers need of a host on this CPU. */
export interface CtlHost {
  stack: Stack;
  closed: boolean;
}

/** Put up to `max` rows of `words` ints from `rows[start..]` in the reply; results total, n. */
function replyRows(td: ProtocolThread, msg: number, rows: number[][], start: number, words: number, max: number): void {
  const ctx = td.ctx;
  const n = Math.max(0, Math.min(max, rows.length - start));
  const out = new Int32Array(n * words);
  for (let i = 0; i < n; i++) out.set(rows[start + i], i * words);
  ctx.setArg(msg, 0, rows.length);
  ctx.setArg(msg, 1, n);
  ctx.setPayload(msg, new Uint8Array(out.buffer));
}

/** Register the control commands on this CPU for its `hosts` (the array mpnet fills). */
export function registerCtlHandlers(td: ProtocolThread, hosts: readonly CtlHost[]): void {
  const ctx = td.ctx;
  const captures = new Map<number, PcapWriter>();
  const live = (msg: number): CtlHost | null => {
    const h = hosts[ctx.arg(msg, 0)];
    return h === undefined || h.closed ? null : h;
  };

  td.register(NET_CTL_ROUTES, 'ctl routes', (_td, msg) => {
    const h = live(msg);
    if (h === null) return ENOENT;
    const st = h.stack;
    const rows = st.routes.routes.map((r) => [r.dst | 0, r.prefix, r.gateway | 0, st.ifs.indexOf(r.ifp)]);
    replyRows(td, msg, rows, ctx.arg(msg, 1), CTL_ROUTE_WORDS, CTL_ROUTE_ROWS);
    return 0;
  });

  td.register(NET_CTL_ARP, 'ctl arp', (_td, msg) => {
    const h = live(msg);
    if (h === null) return ENOENT;
    const st = h.stack;
    const now = st.now();
    const rows: number[][] = [];
    for (const e of st.arp.entries.values()) {
      const left = e.expire === Infinity ? -1 : Math.max(0, Math.round((e.expire - now) / 1000));
      rows.push([e.ip | 0, Math.floor(e.mac / 0x1_0000_0000), e.mac % 0x1_0000_0000 | 0, left, e.state === 0 ? 1 : 0, st.ifs.indexOf(e.ifp)]);
    }
    rows.sort((a, b) => (a[0] >>> 0) - (b[0] >>> 0));
    replyRows(td, msg, rows, ctx.arg(msg, 1), CTL_ARP_WORDS, CTL_ARP_ROWS);
    return 0;
  });

  td.register(NET_CTL_PCAP, 'ctl pcap', (_td, msg) => {
    const hi = ctx.arg(msg, 0);
    const h = live(msg);
    if (h === null) return ENOENT;
    const on = ctx.arg(msg, 1);
    const old = captures.get(hi);
    if (on === 0) {
      if (old === undefined) return ENOENT;
      for (const ifp of h.stack.ifs) if (ifp.pcap === old) ifp.setCapture(null);
      captures.delete(hi);
      old.close();
      ctx.setArg(msg, 0, old.packets);
      return 0;
    }
    if (old !== undefined) return EBUSY;
    const p = ctx.copyPayload(msg);
    const z = p.indexOf(0);
    const path = Buffer.from(p.buffer, p.byteOffset, z < 0 ? p.length : z).toString('utf8');
    if (path === '') return EINVAL;
    let w: PcapWriter;
    try {
      w = PcapWriter.open(path, ctx.arg(msg, 2) > 0 ? { snaplen: ctx.arg(msg, 2) } : {});
    } catch {
      return EBADF;
    }
    captures.set(hi, w);
    for (const ifp of h.stack.ifs) ifp.setCapture(w);
    ctx.setArg(msg, 0, 0);
    return 0;
  });

  td.register(NET_CTL_TCPLIST, 'ctl tcplist', (_td, msg) => {
    const h = live(msg);
    if (h === null) return ENOENT;
    const rows = (h.stack.tcp.sockets?.list() ?? []).map((c) => [c.laddr | 0, c.lport, c.faddr | 0, c.fport, c.state, c.recvQ, c.sendQ]);
    replyRows(td, msg, rows, ctx.arg(msg, 1), CTL_TCP_WORDS, CTL_TCP_ROWS);
    return 0;
  });

  td.register(NET_CTL_TCPSTATS, 'ctl tcpstats', (_td, msg) => {
    const h = live(msg);
    if (h === null) return ENOENT;
    const v = h.stack.tcp.stats;
    const start = Math.max(0, ctx.arg(msg, 1));
    const n = Math.max(0, Math.min(CTL_TCPSTAT_SLOTS, v.length - start));
    ctx.setArg(msg, 0, v.length);
    ctx.setArg(msg, 1, n);
    ctx.setPayload(msg, new Uint8Array(Float64Array.from(v.subarray(start, start + n)).buffer));
    return 0;
  });

  td.register(NET_CTL_TCPDROP, 'ctl tcpdrop', (_td, msg) => {
    const h = live(msg);
    if (h === null) return ENOENT;
    const a = (i: number): number => ctx.arg(msg, i);
    return h.stack.tcp.sockets?.drop(a(1) >>> 0, a(2), a(3) >>> 0, a(4)) === 0 ? 0 : ESRCH;
  });

  // A capture still running when the CPU stops is flushed and closed.
  td.shutdownHooks.push(() => {
    for (const w of captures.values()) w.close();
    captures.clear();
  });
}
