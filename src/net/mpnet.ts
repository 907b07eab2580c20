/**
 * The network stack on the MP core's CPUs: the handler module loaded in
 * every CPU worker by Machine.start({handlers: [<this file>]}). It puts the
 * pieces together on each CPU:
 *
 *   - vnet.ts: this CPU's instance of every host (stack, interfaces, routes,
 *     ARP) and the configuration messages that build them (NET_V*);
 *   - netisr.ts: which CPU a frame belongs to (rss.ts) and the handoff of
 *     its mbuf, by handle, to that CPU (NET_INPUT, NET_INPUT_DGRAM);
 *   - the socket layer and UDP in the protocol switch, so user threads'
 *     sockets reach these stacks through PRU_* messages;
 *   - apps/handlers.ts: echo, DNS-like server and load generator commands.
 *
 * Commands kept here (introspection and the two fixed set-ups):
 *   NET_SETUP(host0 ip, host1 ip, dir)  the classic two hosts 10.0.0.1/10.0.0.2 on one link, static
 *                                       ARP; counters in the arena blocks of stats directory `dir`
 *   NET_STATS(host) -> udp delivered, udp opackets, frames received from other CPUs, ip reassembled
 *   NET_PCBLIST(start) -> total, rows   UDP PCBs of this CPU from row `start`, up to PCB_ROWS rows
 *                                       of PCB_ROW_WORDS ints in the payload (netstat -an)
 *   NET_TAP_STATS(host, ip) -> queue, TAP_STAT_WORDS counters, handed off, from others,
 *                 ARP mappings forwarded to this CPU, MAC of `ip` in this CPU's ARP table (hi, lo; -1 -1 if none)
 *                 (host: a stack whose first interface is a TAP, made by NET_VHOST_ADD / NET_VIF_ADD)
 *
 * TAP (multi-queue, one queue per CPU): each CPU polls its own queue from
 * its own event loop (the addon's uv_poll; a poll hook keeps reading while
 * the CPU is busy). The kernel picks the queue by its own flow hash, so a
 * frame may land on a CPU that does not own its flow: netisr hands the mbuf
 * to the owner. Transmit is always on the sending CPU's queue. ARP goes to
 * CPU 0, which forwards what it learns to every CPU (vnet.ts).
 *
 * List this module alone, or after the socket layer's module.
 */
import type { ProtocolThread } from '../kern/lwkt/protothread.js';
import { EINVAL } from '../kern/errno.js';
import { Mbufs } from '../kern/mbuf/mbuf.js';
import { UDPS, IPS } from '../netinet/stats.js';
import { register as registerSocketLayer } from '../kern/socket/handlers.js';
import { registerProtocol } from '../kern/socket/protosw.js';
import type { SockBufs } from '../kern/socket/sockbuf.js';
import { udpProtocol, type PcbRow } from '../netinet/udp_socket.js';
import { TQ_NAMES } from './phy/tap.js';
import { bindStackTunables, registerNetSysctls } from '../netinet/tunables.js';
import { Sysctl } from '../kern/sysctl/sysctl.js';
import { registerTcpSysctls } from '../netinet/tcp_tunables_shared.js';
import { NET_QUIESCE, VIF_LINK, Vnet } from './vnet.js';
import { registerApps } from '../apps/handlers.js';

export { frameCpu, packetCpu, portForCpu, NET_INPUT, NET_INPUT_DGRAM } from './netisr.js';
export { NET_QUIESCE, NET_TAP_ARP, packIfName, unpackIfName } from './vnet.js';
export { NET_ECHO_BIND, NET_LOADGEN, NET_DNS_BIND, NET_APP_STATS } from '../apps/handlers.js';
import { registerCtlHandlers } from './ctl_handlers.js';
import { registerTcpUser } from '../lib/tcpcpu.js';

export const NET_SETUP = 0x5101;
export const NET_STATS = 0x5105;
export const NET_PCBLIST = 0x5109;
export const NET_TAP_STATS = 0x510b;

/** Per-queue counters returned by NET_TAP_STATS after the queue index (tap.ts TQ_*). */
export const TAP_STAT_WORDS = TQ_NAMES.length;

/** netstat -an rows per NET_PCBLIST reply, and ints per row: host, laddr, lport, faddr, fport, queued, user. */
export const PCB_ROWS = 4;
export const PCB_ROW_WORDS = 7;

/** MACs of NET_SETUP's two hosts: MAC_BASE + host. */
export const MAC_BASE = 0x0200_0000_1000;

export function register(td: ProtocolThread): void {
  const ctx = td.ctx;
  if (!td.layers.has('sockbufs')) registerSocketLayer(td);
  const mb = td.layers.get('mbufs') as Mbufs;
  const sbs = td.layers.get('sockbufs') as SockBufs;
  const vnet = new Vnet(td, mb);
  vnet.register();
  td.layers.set('vnet', vnet);
  const udpsw = udpProtocol(td, mb, sbs, (h) => vnet.stack(h));
  registerProtocol(udpsw);
  registerTcpUser(td, mb, (h) => vnet.stack(h)); // node:net's requests to TCP on this CPU (lib/tcpcpu.ts)
  // The stack's tunables are arena words: a sysctl set in any thread reaches every CPU's stacks.
  let sysctl = td.layers.get('sysctl') as Sysctl | undefined;
  if (sysctl === undefined) td.layers.set('sysctl', (sysctl = new Sysctl()));
  registerNetSysctls(sysctl, ctx.uma.arena);
  registerTcpSysctls(sysctl, ctx.uma.arena);
  const closeApps = registerApps(td, vnet);
  registerCtlHandlers(td, vnet.hosts); // routes, ARP and pcap for the control socket (src/kern/ctl)

  td.register(NET_SETUP, 'net setup', (_td, msg) => {
    if (vnet.hosts.length > 0) return EINVAL;
    const ips = [ctx.arg(msg, 0) >>> 0, ctx.arg(msg, 1) >>> 0];
    const dir = ctx.arg(msg, 2);
    for (let h = 0; h < 2; h++) vnet.addHost(`host${h}`, false, dir, h, 1 + h * 64);
    for (let h = 0; h < 2; h++) vnet.addIf(h, { kind: VIF_LINK, name: 'xl0', mtu: 1500, mac: MAC_BASE + h, statDir: dir, statSlot: h, peerHost: 1 - h, peerIf: 0, batch: 0 });
    for (let h = 0; h < 2; h++) {
      // Every CPU has static ARP for the peer; the link's MTU follows net.link.xl.mtu.
      const st = vnet.hosts[h].stack;
      const ifp = vnet.hosts[h].ifs[0].ifp;
      bindStackTunables(st, ctx.uma.arena, [ifp]);
      const mask = 0xffffff00;
      ifp.addrs.push({ addr: ips[h], mask, broadcast: (ips[h] | 0xff) >>> 0 });
      st.routes.add(ips[h], 24, 0, ifp);
      st.arp.set(ifp, ips[1 - h], MAC_BASE + 1 - h);
    }
    return 0;
  });
  /** The socket table of this CPU: in-stack sockets and user sockets' PCBs alike. */
  td.register(NET_PCBLIST, 'net pcblist', (_td, msg) => {
    const rows: PcbRow[] = [];
    const user = new Set(udpsw.rows().map((r) => `${r.host}:${r.lport}:${r.faddr}:${r.fport}`));
    rows.push(...udpsw.rows());
    vnet.hosts.forEach((h, host) => {
      for (const p of h.stack.udp.all()) {
        if (user.has(`${host}:${p.lport}:${p.faddr}:${p.fport}`)) continue;
        rows.push({ cpu: td.cpu, host, laddr: p.laddr, lport: p.lport, faddr: p.faddr, fport: p.fport, queued: p.rcvBytes, user: false });
      }
    });
    const start = ctx.arg(msg, 0);
    const out = new Int32Array(PCB_ROWS * PCB_ROW_WORDS);
    let n = 0;
    for (let i = start; i < rows.length && n < PCB_ROWS; i++, n++) {
      const r = rows[i];
      out.set([r.host, r.laddr | 0, r.lport, r.faddr | 0, r.fport, r.queued, r.user ? 1 : 0], n * PCB_ROW_WORDS);
    }
    ctx.setArg(msg, 0, rows.length);
    ctx.setArg(msg, 1, n);
    ctx.setPayload(msg, new Uint8Array(out.buffer, 0, n * PCB_ROW_WORDS * 4));
    return 0;
  });

  td.register(NET_TAP_STATS, 'net tap stats', (_td, msg) => {
    const h = vnet.hosts[ctx.arg(msg, 0)];
    const vif = h?.ifs[0];
    if (vif === undefined || vif.tap === undefined) return EINVAL;
    const mac = h.stack.arp.lookup(vif.ifp, ctx.arg(msg, 1) >>> 0); // before the results overwrite the arguments
    const c = vif.tap.queue.counters;
    ctx.setArg(msg, 0, vif.tap.queue.index);
    for (let i = 0; i < TAP_STAT_WORDS; i++) ctx.setArg(msg, 1 + i, Math.min(c[i], 0x7fffffff));
    ctx.setArg(msg, 1 + TAP_STAT_WORDS, vif.handedOff);
    ctx.setArg(msg, 2 + TAP_STAT_WORDS, vif.fromOthers);
    ctx.setArg(msg, 3 + TAP_STAT_WORDS, h.arpForwarded);
    ctx.setArg(msg, 4 + TAP_STAT_WORDS, mac < 0 ? -1 : Math.floor(mac / 0x1_0000_0000));
    ctx.setArg(msg, 5 + TAP_STAT_WORDS, mac < 0 ? -1 : mac % 0x1_0000_0000 | 0);
    return 0;
  });

  td.register(NET_STATS, 'net stats', (_td, msg) => {
    const h = vnet.hosts[ctx.arg(msg, 0)];
    if (h === undefined) return EINVAL;
    ctx.setArg(msg, 0, h.stack.stats.udp[UDPS.delivered]);
    ctx.setArg(msg, 1, h.stack.stats.udp[UDPS.opackets]);
    ctx.setArg(msg, 2, h.ifs.reduce((n, v) => n + v.fromOthers, 0));
    ctx.setArg(msg, 3, h.stack.stats.ip[IPS.reassembled]);
    return 0;
  });

  const quiesce = (): void => {
    closeApps();
    vnet.quiesce();
  };
  td.register(NET_QUIESCE, 'net quiesce', () => {
    quiesce();
    return 0;
  });
  td.shutdownHooks.push(() => {
    quiesce();
    mb.drainPacketCache();
  });
}
