/**
 * The TAP cases of the `tcp` suite: slabnet against real Linux programs in
 * a network namespace this benchmark creates (the kernel side of a TAP
 * with vnet_hdr offloads; 10.78.0.1 is Linux, 10.78.0.2 slabnet), each
 * against the same programs on the kernel alone, measured in the same run:
 *
 *  - bulk, Linux iperf3 as peer, both directions (iperf3 -c into slabnet's
 *    iperf3 server, and -R), Gbit/s of payload the receiver counted, vs
 *    Linux iperf3 to Linux iperf3 over a veth pair between two namespaces
 *    (goal: >= 0.5x and >= 3 Gbit/s);
 *  - HTTP: wrk (1 thread, 8 connections, keep-alive) against Node's
 *    http.Server on slabnet over the TAP, vs wrk against the same
 *    http.Server on the kernel's 127.0.0.1 (goal: >= 0.8x).
 *
 * Needs root, /dev/net/tun, the TAP addon, iperf3 and wrk: without them the
 * cases are reported as skipped (with the reason), never measured. Commands
 * that move traffic run asynchronously (the slabnet stack runs in this
 * thread); setup and teardown are synchronous. Every namespace is deleted
 * at the end, also after a failure.
 */
import http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { NetNs } from '../lib/netns.js';
import { System } from '../lib/topology.js';
import { netFor, type Server as SlabServer } from '../lib/net.js';
import { serveHttp } from '../lib/http.js';
import { Iperf3Server, type NetLike } from '../apps/iperf3.js';
import { tapAddonPath } from '../net/phy/tap-addon.js';
import { compared, type BenchOptions, type BenchResult } from './harness.js';

const SUITE = 'tcp';
const US = '10.78.0.2';
const PEER = '10.78.0.1';
const WRK_CONNS = 8;
const BODY = 'hello from slabnet\n';

export const TAP_BULK_IN = 'bulk, TAP with Linux iperf3 as peer, Linux -> slabnet';
export const TAP_BULK_OUT = 'bulk, TAP with Linux iperf3 as peer, slabnet -> Linux (-R)';
export const TAP_HTTP = "HTTP from Linux wrk over TAP to Node's http.Server on slabnet";

/** Why the TAP cases cannot run here, or null. */
export function tapBenchSkip(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root (TAP devices, namespaces)';
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  if (!existsSync(tapAddonPath())) return 'the TAP addon is not built (npm run build:native)';
  for (const t of ['ip', 'iperf3', 'wrk']) if (spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0) return `${t} is not installed (scripts/install-system-deps.sh)`;
  return null;
}

function skipped(name: string, unit: string, baseline: string, why: string): BenchResult {
  return { suite: SUITE, case: name, unit, value: NaN, baseline, skipped: why };
}

/** Run argv to completion without blocking this thread; stdout as text. */
function runAsync(argv: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

/** Gbit/s the receiver counted, from iperf3 -J output. */
function iperfGbps(r: { code: number | null; out: string; err: string }, what: string): number {
  let j: { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
  try {
    j = JSON.parse(r.out) as typeof j;
  } catch {
    throw new Error(`${what}: iperf3 printed no JSON (exit ${r.code}): ${r.err.slice(0, 300)}`);
  }
  const bps = j.end?.sum_received?.bits_per_second;
  if (j.error !== undefined || typeof bps !== 'number') throw new Error(`${what}: iperf3 ${j.error ?? 'gave no sum_received'}`);
  return bps / 1e9;
}

/** Wait until something listens on `port` in `ns` (polling ss). */
async function listening(ns: NetNs, port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (ns.exec(['ss', '-ltnH']).includes(`:${port} `)) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`nothing listens on ${port} in ${ns.name}`);
}

/** Linux iperf3 to Linux iperf3 over a veth pair: [client -> server, -R] Gbit/s. */
async function vethIperf(secs: number): Promise<[number, number]> {
  const a = NetNs.create('bva');
  const b = NetNs.create('bvb');
  try {
    a.veth(b, `sbv${process.pid % 10000}`, '10.78.1.1/24', '10.78.1.2/24');
    const out: number[] = [];
    for (const rev of [false, true]) {
      const srv = runAsync(b.argv(['iperf3', '-s', '-1', '-B', '10.78.1.2']), (secs + 20) * 1000);
      await listening(b, 5201);
      const c = await runAsync(a.argv(['iperf3', '-c', '10.78.1.2', '-t', String(secs), '-J', ...(rev ? ['-R'] : [])]), (secs + 20) * 1000);
      await srv;
      out.push(iperfGbps(c, `veth iperf3${rev ? ' -R' : ''}`));
    }
    return [out[0], out[1]];
  } finally {
    a.destroy();
    b.destroy();
  }
}

/** A single-thread System with one stack whose TAP's kernel side is in a fresh namespace. */
function tapSystem(tag: string): { sys: System; ns: NetNs; net: ReturnType<typeof netFor> } {
  const ns = NetNs.create(tag);
  const sys = System.local();
  try {
    const st = sys.addStack('slabnet');
    const name = `sbt${tag.slice(0, 3)}${process.pid % 10000}`;
    st.addTap(name, { addrs: `${US}/24` });
    ns.adopt(name, `${PEER}/24`);
    // A 1 MB so_rcv from the start (see src/test/net/tcplinux.ts): recvbuf_auto would grow a 64 KiB
    // one, but Linux's 64 KiB GSO segments fill it before the first measurement.
    st.stack.tcp.cfg.recvspace = 1 << 20;
    return { sys, ns, net: netFor(st.stack) };
  } catch (e) {
    void sys.stop();
    ns.destroy();
    throw e;
  }
}

/** Linux iperf3 -c against slabnet's iperf3 server over the TAP: [Linux -> slabnet, slabnet -> Linux] Gbit/s. */
async function tapIperf(secs: number): Promise<[number, number]> {
  const { sys, ns, net } = tapSystem('btap');
  const srv = new Iperf3Server(net as unknown as NetLike);
  try {
    await srv.listen();
    const out: number[] = [];
    for (const rev of [false, true]) {
      const next = srv.next();
      const c = await runAsync(ns.argv(['iperf3', '-c', US, '-t', String(secs), '-J', ...(rev ? ['-R'] : [])]), (secs + 20) * 1000);
      out.push(iperfGbps(c, `TAP iperf3${rev ? ' -R' : ''}`));
      await next;
    }
    return [out[0], out[1]];
  } finally {
    await srv.close();
    await sys.stop();
    ns.destroy();
  }
}

function hello(_req: http.IncomingMessage, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-length': String(BODY.length) });
  res.end(BODY);
}

/** Requests/s wrk reported (failing on socket errors or non-2xx answers). */
function wrkRate(r: { code: number | null; out: string; err: string }, what: string): number {
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.out);
  if (r.code !== 0 || m === null) throw new Error(`${what}: wrk failed (exit ${r.code}): ${r.out.slice(-300)} ${r.err.slice(0, 300)}`);
  if (/Non-2xx|Socket errors/.test(r.out)) throw new Error(`${what}: wrk saw errors: ${r.out}`);
  return Number(m[1]);
}

function wrkArgs(url: string, secs: number): string[] {
  return ['wrk', '-t1', `-c${WRK_CONNS}`, `-d${secs}s`, url];
}

/** wrk from the namespace against Node's http.Server on slabnet over the TAP. */
async function tapWrk(secs: number): Promise<number> {
  const { sys, ns, net } = tapSystem('bwrk');
  const hs = http.createServer({ keepAliveTimeout: 5000 }, hello);
  const tcp: SlabServer = net.createServer();
  serveHttp(hs, tcp);
  try {
    await new Promise<void>((r) => tcp.listen(80, () => r()));
    return wrkRate(await runAsync(ns.argv(wrkArgs(`http://${US}/`, secs)), (secs + 20) * 1000), 'wrk over TAP');
  } finally {
    hs.closeAllConnections();
    await new Promise<void>((r) => tcp.close(() => r()));
    await sys.stop();
    ns.destroy();
  }
}

/** wrk against the same http.Server on the kernel's loopback. */
async function kernelWrk(secs: number): Promise<number> {
  const hs = http.createServer({ keepAliveTimeout: 5000 }, hello);
  await new Promise<void>((r) => hs.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (hs.address() as AddressInfo).port;
    return wrkRate(await runAsync(wrkArgs(`http://127.0.0.1:${port}/`, secs), (secs + 20) * 1000), 'wrk on loopback');
  } finally {
    hs.closeAllConnections();
    await new Promise<void>((r) => hs.close(() => r()));
  }
}

/** The TAP cases (or their skipped rows). */
export async function tapCases(opts: BenchOptions): Promise<BenchResult[]> {
  const veth = 'Linux iperf3 to Linux iperf3 over a veth pair';
  const kern = "wrk to Node's http.Server on kernel 127.0.0.1";
  const why = tapBenchSkip();
  if (why !== null) {
    return [skipped(TAP_BULK_IN, 'Gbit/s', veth, why), skipped(TAP_BULK_OUT, 'Gbit/s', veth, why), skipped(TAP_HTTP, 'req/s', kern, why)];
  }
  const secs = opts.quick ? 1 : 5;
  const [vIn, vOut] = await vethIperf(secs);
  const [tIn, tOut] = await tapIperf(secs);
  const kw = await kernelWrk(secs);
  const tw = await tapWrk(secs);
  const bulkNote = `iperf3 -t ${secs}, 1 stream, 128 KiB blocks; TAP MTU 1500 with vnet_hdr (GSO/TSO, checksum offload); so_rcv 1 MB; goal >= 0.5x and >= 3 Gbit/s`;
  return [
    compared(SUITE, TAP_BULK_IN, 'Gbit/s', tIn, veth, vIn, { workers: 1, note: bulkNote }),
    compared(SUITE, TAP_BULK_OUT, 'Gbit/s', tOut, `${veth} (-R)`, vOut, { workers: 1, note: bulkNote }),
    compared(SUITE, TAP_HTTP, 'req/s', tw, kern, kw, { workers: 1, note: `wrk -t1 -c${WRK_CONNS} -d${secs}s, keep-alive GET, 19-byte body; goal >= 0.8x` }),
  ];
}
