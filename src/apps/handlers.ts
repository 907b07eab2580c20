/**
 * The applications as MP commands: a user thread asks a CPU to run an echo
 * or DNS-like server on one of its hosts, or a load generator, by message
 * (the demo and the benchmark use them). Registered by the stack's handler
 * module (net/mpnet.ts) on every CPU; each server is this CPU's own and is
 * closed when the CPU's hosts quiesce.
 *
 *   NET_ECHO_BIND(host, port)   an echo server socket on this CPU
 *   NET_DNS_BIND(host, port)    a DNS-like responder (dns.ts) on this CPU
 *   NET_LOADGEN(host, dst, port, count, window, size, reqCpu) -> replies, us, lport, misses
 *                               (reqCpu >= 0: requests must land on that CPU of the peer); the
 *                               reply comes when the run ends (EJUSTRETURN until then)
 *   NET_APP_STATS(host, port) -> requests, replies, sendErrors, socketErrors, bad of this CPU's server
 *   NET_TCP_RR(cliHost, srvHost, dst, port, conns, size, warmMs, runMs) -> transactions, us, connected, errors
 *                               TCP request/response between two hosts on this CPU alone (tcprr.ts);
 *                               the reply comes when the run ends
 */
import type { ProtocolThread } from '../kern/lwkt/protothread.js';
import { EINVAL, EJUSTRETURN } from '../kern/errno.js';
import { UDPS } from '../netinet/stats.js';
import type { Vnet } from '../net/vnet.js';
import { portForCpu } from '../net/netisr.js';
import { dnsServer, echoServer, type UdpServer } from './servers.js';
import { loadGen } from './loadgen.js';
import { tcpRR } from './tcprr.js';

export const NET_ECHO_BIND = 0x5103;
export const NET_LOADGEN = 0x5104;
export const NET_DNS_BIND = 0x5108;
export const NET_APP_STATS = 0x5117;
export const NET_TCP_RR = 0x5118;

/** Register the application commands on this CPU; returns what quiesce calls (ends runs, closes servers). */
export function registerApps(td: ProtocolThread, vnet: Vnet): () => void {
  const ctx = td.ctx;
  const servers: { host: number; port: number; srv: UdpServer }[] = [];
  const runs = new Set<{ stop(): void }>();
  const bind = (msg: number, make: typeof echoServer): number => {
    const host = ctx.arg(msg, 0);
    const port = ctx.arg(msg, 1);
    const st = vnet.stack(host);
    if (st === null || port <= 0 || port > 65535) return EINVAL;
    servers.push({ host, port, srv: make(st, port) });
    return 0;
  };
  td.register(NET_ECHO_BIND, 'net echo bind', (_td, msg) => bind(msg, echoServer));
  td.register(NET_DNS_BIND, 'net dns bind', (_td, msg) => bind(msg, dnsServer));
  td.register(NET_APP_STATS, 'net app stats', (_td, msg) => {
    const x = servers.find((s) => s.host === ctx.arg(msg, 0) && s.port === ctx.arg(msg, 1));
    if (x === undefined) return EINVAL;
    const s = x.srv.stats;
    [s.requests, s.replies, s.sendErrors, s.socketErrors, s.bad].forEach((v, i) => ctx.setArg(msg, i, Math.min(v, 0x7fffffff)));
    return 0;
  });
  td.register(NET_LOADGEN, 'net loadgen', (_td, msg) => {
    const host = ctx.arg(msg, 0);
    const st = vnet.stack(host);
    if (st === null) return EINVAL;
    const dst = ctx.arg(msg, 1) >>> 0;
    const port = ctx.arg(msg, 2);
    const laddr = vnet.hosts[host].ifs[0]?.ifp.addr ?? 0;
    const lport = portForCpu(laddr, dst, port, td.cpu, ctx.ncpus, (td.cpu * 7919) & 0x3fff, ctx.arg(msg, 6));
    if (lport === 0) return EINVAL;
    const delivered0 = st.stats.udp[UDPS.delivered];
    const opts = { dst, port, lport, count: ctx.arg(msg, 3), window: ctx.arg(msg, 4), size: ctx.arg(msg, 5) };
    const run = loadGen(td, st, opts, (r) => {
      runs.delete(run);
      ctx.setArg(msg, 0, r.replies);
      ctx.setArg(msg, 1, r.us);
      ctx.setArg(msg, 2, lport);
      ctx.setArg(msg, 3, st.stats.udp[UDPS.delivered] - delivered0 - r.replies);
      ctx.replymsg(msg, 0);
    });
    runs.add(run);
    return EJUSTRETURN;
  });
  td.register(NET_TCP_RR, 'net tcp rr', (_td, msg) => {
    const a = (i: number) => ctx.arg(msg, i);
    const cli = vnet.stack(a(0));
    const srv = vnet.stack(a(1));
    if (cli === null || srv === null || cli.tcp.sockets === null || srv.tcp.sockets === null) return EINVAL;
    if (a(3) <= 0 || a(3) > 65535 || a(4) < 1 || a(4) > 4096 || a(5) < 1 || a(5) > 65536 || a(6) < 0 || a(7) < 1) return EINVAL;
    // The run may end at once (the listener failed), before tcpRR returns.
    let run: { stop(): void } | null = null;
    let ended = false;
    run = tcpRR(td, cli, srv, { dst: a(2) >>> 0, port: a(3), conns: a(4), size: a(5), warmMs: a(6), runMs: a(7) }, (r) => {
      ended = true;
      if (run !== null) runs.delete(run);
      [r.transactions, r.us, r.connected, r.errors].forEach((v, i) => ctx.setArg(msg, i, Math.min(v, 0x7fffffff)));
      ctx.replymsg(msg, 0);
    });
    if (!ended) runs.add(run);
    return EJUSTRETURN;
  });
  return () => {
    for (const r of [...runs]) r.stop(); // answers its message with what it has
    for (const x of servers.splice(0)) x.srv.close();
  };
}
