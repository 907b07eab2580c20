/**
 * The main job: two hosts' stacks on the machine's CPUs joined by the
 * in-memory link; a DNS-like responder bound on every CPU of host 1
 * (10.0.0.2:53), and a load generator in the main thread on host 0 whose
 * node:dgram-shaped sockets (udpuser.ts) keep a window of queries in
 * flight for `seconds`. Ends with requests/s, latency percentiles,
 * netstat -s, netstat -i, netstat -an, netstat -m and vmstat -z, and a leak
 * check: every zone's `used` back to where it started (exit 1 otherwise).
 */
import http from 'node:http';
import { availableParallelism } from 'node:os';
import { createServer as createMpServer, type MpSocket } from '../lib/netmp.js';
import { serveHttp } from '../lib/http.js';
import cliProgress from 'cli-progress';
import { Uma } from '../uma/uma.js';
import { zoneStats } from '../uma/stats.js';
import { UMA_ZFLAG_INTERNAL } from '../uma/flags.js';
import { vmstatZ } from '../uma/vmstat.js';
import { netstatM } from '../kern/mbuf/stats.js';
import { NET_DNS_BIND, NET_ECHO_BIND } from '../net/mpnet.js';
import { formatTapQueues, startTapNet, type TapNet } from '../lib/tapnet.js';
import { macToString } from '../wire/ethernet.js';
import { formatNetstatAn, pcbList, startNet, type NetSystem } from '../lib/netuser.js';
import { createSocket, type UdpSocket } from '../lib/udpuser.js';
import { dnsParseAnswer, dnsQuery } from '../apps/dns.js';
import { formatNetstatS } from '../netinet/stats.js';
import type { System } from '../lib/topology.js';

export interface NetDemoOptions {
  seconds: number;
  cpus?: number;
  /** Client sockets of the load generator. */
  clients?: number;
  /** Queries in flight per client socket. */
  window?: number;
  progress?: boolean;
  out?: (s: string) => void;
  /** Stop the load early when this settles (Ctrl-C); the summary still prints. */
  until?: Promise<void>;
  /** Wrapper hooks (demojob.ts: control socket, -o sysctls, live figures). */
  hooks?: DemoHooks;
}

/** Called with the running system before the load starts, and before it stops. */
export interface DemoHooks {
  started?(sys: NetSystem | TapNet | System): Promise<void> | void;
  stopping?(): Promise<void> | void;
}

const DNS_PORT = 53;
const MAX_SAMPLES = 1 << 21;

/** Latency percentile (ms) of the first n samples, sorted in place. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Each zone's items in use now, by name: the starting point of the leak check. */
export function zoneUse(uma: Uma): Map<string, number> {
  return new Map(uma.allZones().map((z) => [z.name, zoneStats(z).used]));
}

/**
 * The end of both demos: print vmstat -z, then compare every zone's use
 * with `before`; prints a LEAK line and returns false when one differs.
 * UMA's own bucket and slab zones keep their caches: not a leak.
 */
export function vmstatAndLeakCheck(uma: Uma, before: Map<string, number>, out: (s: string) => void): boolean {
  out('');
  out('vmstat -z:');
  out(vmstatZ(uma).trimEnd());
  const leaks = uma
    .allZones()
    .filter((z) => (z.flags & UMA_ZFLAG_INTERNAL) === 0)
    .map((z) => ({ name: z.name, used: zoneStats(z).used, was: before.get(z.name) ?? 0 }))
    .filter((z) => z.used !== z.was);
  out('');
  if (leaks.length > 0) {
    out(`LEAK: ${leaks.map((z) => `${z.name} used ${z.used} (was ${z.was})`).join(', ')}`);
    return false;
  }
  return true;
}

/**
 * The timed part of a demo's load run: a progress bar on a terminal (or when
 * asked) showing elapsed ms and requests/s, resolved after `seconds` from
 * `tStart` or as soon as `early()` (Ctrl-C). Returns the bar for the caller
 * to stop once its own shutdown is done.
 */
export async function timedLoad(seconds: number, progress: boolean | undefined, tStart: number, answered: () => number, early: () => boolean): Promise<cliProgress.SingleBar | null> {
  const bar =
    (progress ?? process.stderr.isTTY)
      ? new cliProgress.SingleBar({ format: 'load [{bar}] {percentage}% | {value}/{total} ms | {rps} req/s', stream: process.stderr }, cliProgress.Presets.shades_classic)
      : null;
  const totalMs = Math.round(seconds * 1000);
  bar?.start(totalMs, 0, { rps: 0 });
  await new Promise<void>((res) => {
    const tick = setInterval(() => {
      const el = performance.now() - tStart;
      bar?.update(Math.min(totalMs, Math.round(el)), { rps: Math.round(answered() / (el / 1000)) });
      if (el >= totalMs || early()) {
        clearInterval(tick);
        res();
      }
    }, 100);
  });
  return bar;
}

/** Run the demo; returns the exit code (1 on a leak or when no request was answered). */
export async function runNetDemo(o: NetDemoOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const ncpus = o.cpus ?? Math.max(2, Math.min(4, availableParallelism()));
  const nclients = o.clients ?? 4;
  const window = o.window ?? 8;
  const uma = Uma.create({ size: 256 << 20, ncpus: ncpus + 4 });
  const before = zoneUse(uma);
  const sys = await startNet({ ncpus, uma });
  out(`slabnet: ${ncpus} CPU workers, host0 10.0.0.1 (load generator, main thread) <-> host1 10.0.0.2 (DNS-like server on every CPU), in-memory link`);
  const clients: UdpSocket[] = [];
  const samples = new Float64Array(MAX_SAMPLES);
  let nsamples = 0;
  let answered = 0;
  let bad = 0;
  let sent = 0;
  let running = true;
  let anTable = '';
  const t0 = performance.now();
  let early = false;
  void o.until?.then(() => (early = true));
  try {
    await o.hooks?.started?.(sys);
    for (let c = 0; c < ncpus; c++) {
      const [e] = await sys.machine.call(c, NET_DNS_BIND, [1, DNS_PORT]);
      if (e !== 0) throw new Error(`dns server on cpu${c}: errno ${e}`);
    }
    let inflight = 0;
    let drained: (() => void) | null = null;
    const asks: (() => void)[] = [];
    for (let k = 0; k < nclients; k++) {
      const s = createSocket(sys.layer, { type: 'udp4', host: 0 });
      const started = new Float64Array(65536);
      let nextId = k * 4099;
      const ask = (): void => {
        const id = nextId++ & 0xffff;
        started[id] = performance.now();
        sent++;
        inflight++;
        s.send(dnsQuery(id, `host${id % 1000}.client${k}.slabnet.test`));
      };
      s.on('message', (msg: Buffer) => {
        const a = dnsParseAnswer(msg);
        inflight--;
        if (a === null) bad++;
        else {
          answered++;
          if (nsamples < MAX_SAMPLES) samples[nsamples++] = performance.now() - started[a.id];
        }
        if (running) ask();
        else if (inflight === 0) drained?.();
      });
      s.on('error', () => bad++);
      s.connect(DNS_PORT, '10.0.0.2');
      await new Promise<void>((res) => s.once('connect', () => res()));
      clients.push(s);
      asks.push(ask);
    }
    // Fill every window; each reply sends the next query until time is up.
    const tStart = performance.now();
    for (const ask of asks) for (let i = 0; i < window; i++) ask();
    const bar = await timedLoad(o.seconds, o.progress, tStart, () => answered, () => early);
    running = false;
    const elapsed = (performance.now() - tStart) / 1000;
    bar?.stop();
    if (inflight > 0) {
      await new Promise<void>((res) => {
        drained = res;
        setTimeout(res, 1000);
      });
    }
    anTable = formatNetstatAn(await pcbList(sys.layer));
    const lat = samples.subarray(0, nsamples).sort();
    out('');
    out(`${answered} requests answered in ${elapsed.toFixed(2)} s: ${Math.round(answered / elapsed)} requests/s (${nclients} client sockets x ${window} in flight; ${sent} sent, ${bad} bad)`);
    out(`latency ms: p50 ${percentile(lat, 50).toFixed(3)}  p90 ${percentile(lat, 90).toFixed(3)}  p99 ${percentile(lat, 99).toFixed(3)}  max ${(lat[lat.length - 1] ?? 0).toFixed(3)}`);
    out('');
    out('netstat -s (host1, the server; summed over CPUs from the arena):');
    out(formatNetstatS(sys.stats(1)));
    out('');
    out('netstat -s (host0, the load generator):');
    out(formatNetstatS(sys.stats(0)));
    out('');
    out('netstat -i:');
    out(sys.netstatI());
    out('');
    out('netstat -an:');
    out(anTable);
  } finally {
    running = false;
    for (const s of clients) {
      s.close();
      await s.settled();
    }
    out('');
    out('netstat -m:');
    out(netstatM(sys.mb));
    await o.hooks?.stopping?.();
    await sys.stop();
  }
  if (!vmstatAndLeakCheck(uma, before, out)) return 1;
  out(`no leaks: every zone is back to its starting use (${((performance.now() - t0) / 1000).toFixed(1)} s in all)`);
  return answered > 0 ? 0 : 1;
}

/**
 * Node's http.createServer on the TAP host's TCP port 80 (netmp.ts: a
 * listener on every CPU); answers every GET with a line naming its path.
 * Returns the function that closes it and its connections.
 */
async function serveTapHttp(net: TapNet, ncpus: number): Promise<() => Promise<void>> {
  const stack = { index: net.host, interfaces: [{ addrs: [{ addr: net.addr, prefix: 24 }] }], system: { layer: net.layer, cpus: ncpus } };
  const hs = http.createServer((req, res) => res.end(`hello from slabnet ${req.url ?? '/'}\n`));
  const conns: MpSocket[] = [];
  const srv = createMpServer({ stack }, (s) => conns.push(s));
  const stop = serveHttp(hs, srv);
  await new Promise<void>((res, rej) => {
    srv.once('error', rej);
    srv.listen(80, () => res());
  });
  return async () => {
    stop();
    for (const s of conns) s.destroy();
    await new Promise<void>((res) => {
      srv.close(() => res());
      setTimeout(res, 2000);
    });
    hs.close();
    await srv.settled();
    for (const s of conns) await s.settled();
  };
}

export interface TapDemoOptions {
  seconds: number;
  cpus?: number;
  /** Device name; default slabnet<pid>. */
  name?: string;
  out?: (s: string) => void;
  /** Stop serving early when this settles (tests: once their Linux-side commands are done). */
  until?: Promise<void>;
  hooks?: DemoHooks;
}

/**
 * demo --tap: the DNS-like server (port 53) and a UDP echo server (port 7)
 * bound on every CPU of a stack whose CPUs each own one queue of a
 * multi-queue Linux TAP (tapnet.ts). Prints the commands a user runs from
 * Linux to reach it (a namespace holding the kernel side, ping, queries from
 * several source ports so that several queues get frames), serves for
 * `seconds`, then prints the per-queue counters, netstat -s / -i / -m,
 * vmstat -z and a leak check. Returns the exit code (1 when the TAP cannot
 * be opened, with the reason, or on a leak).
 */
export async function runTapMpDemo(o: TapDemoOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const ncpus = o.cpus ?? Math.max(2, Math.min(4, availableParallelism()));
  const uma = Uma.create({ size: 128 << 20, ncpus: ncpus + 4 });
  const before = zoneUse(uma);
  let net: TapNet;
  try {
    net = await startTapNet({ ncpus, uma, name: o.name ?? `slabnet${process.pid % 10000}`, addr: '10.53.0.2', prefix: 24 });
  } catch (e) {
    out(`demo --tap: ${(e as Error).message} (run as root on Linux with /dev/net/tun and the addon built)`);
    return 1;
  }
  const n = net.name;
  let stopHttp: (() => Promise<void>) | null = null;
  try {
    await o.hooks?.started?.(net);
    for (let c = 0; c < ncpus; c++) {
      for (const [cmd, port] of [
        [NET_DNS_BIND, 53],
        [NET_ECHO_BIND, 7],
      ]) {
        const [e] = await net.machine.call(c, cmd, [net.host, port]);
        if (e !== 0) throw new Error(`server on cpu${c} port ${port}: errno ${e}`);
      }
    }
    stopHttp = await serveTapHttp(net, ncpus);
    out(`slabnet: ${ncpus} CPU workers serve ${n} (a multi-queue TAP, queue i on CPU i), 10.53.0.2/24, MAC ${macToString(net.mac)}:`);
    out(`  UDP 53 DNS-like responder and UDP 7 echo on every CPU, HTTP on TCP 80 (Node's http.createServer), for ${o.seconds} s (-s N for longer). From Linux (root), in another shell:`);
    out('');
    out(`  ip netns add slabnet-peer && ip link set ${n} netns slabnet-peer`);
    out(`  ip -n slabnet-peer addr add 10.53.0.1/24 dev ${n} && ip -n slabnet-peer link set ${n} up`);
    out(`  ip netns exec slabnet-peer ping -c 3 10.53.0.2`);
    out(`  ip netns exec slabnet-peer dig @10.53.0.2 +tries=1 +time=1 example.slabnet.test    # or, without dig:`);
    out(`  printf '\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x01a\\x00\\x00\\x01\\x00\\x01' | ip netns exec slabnet-peer socat -t1 - UDP:10.53.0.2:53 | od -An -tx1`);
    out(`  for i in 1 2 3 4 5 6 7 8; do echo "flow $i" | ip netns exec slabnet-peer socat -t0.3 - UDP4:10.53.0.2:7; done   # 8 source ports: 8 flows over the queues`);
    out(`  ip netns exec slabnet-peer curl -s --max-time 5 http://10.53.0.2/hello   # Node's http.Server on slabnet TCP port 80`);
    out(`  ip netns del slabnet-peer`);
    out('');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([new Promise((r) => (timer = setTimeout(r, o.seconds * 1000))), o.until ?? new Promise(() => {})]);
    clearTimeout(timer);
    const qs = await net.queueStats();
    out('per-queue counters (queue i = CPU i; Rx->Other: read here for a flow another CPU owns, handed over by handle):');
    out(formatTapQueues(qs));
    out('');
    out('netstat -s (summed over CPUs from the arena):');
    out(formatNetstatS(net.stats()));
    out('');
    out('netstat -i:');
    out(net.netstatI());
  } finally {
    await stopHttp?.();
    out('');
    out('netstat -m:');
    out(netstatM(net.mb));
    await o.hooks?.stopping?.();
    await net.stop();
  }
  if (!vmstatAndLeakCheck(uma, before, out)) return 1;
  out(`no leaks: every zone is back to its starting use; ${n} is gone`);
  return 0;
}
