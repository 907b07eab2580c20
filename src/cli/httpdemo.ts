/**
 * The main job (default `slabnet demo`): two stacks of a System on the
 * worker CPUs (System.start({ cpus })) joined by the in-memory link. Host
 * "server" (10.0.0.2) runs Node's own http.createServer() on slabnet TCP
 * port 80 (lib/netmp.ts's MpServer handing connections to it, lib/http.ts's
 * serveHttp); host "client" (10.0.0.1) is a keep-alive HTTP load generator:
 * Node's http.request over slabnet's http Agent, `conns` connections each
 * with one request in flight, for `seconds`. Ends with requests/s, latency
 * percentiles, netstat -s (ip, udp, tcp ...), netstat -an (TCP states, taken
 * while the connections are up), netstat -m, vmstat -z and the leak check
 * (exit 1 when a zone leaked or no request was answered).
 *
 * Both user halves (the http.Server and the load generator) run in this
 * thread; TCP itself, IP and the link run on the CPUs.
 */
import http from 'node:http';
import { availableParallelism } from 'node:os';
import { Uma } from '../uma/uma.js';
import { rssAddrCpu } from '../net/rss.js';
import { toAddr } from '../netinet/stack.js';
import { netstatM } from '../kern/mbuf/stats.js';
import { System } from '../lib/topology.js';
import { createServer, type MpSocket } from '../lib/netmp.js';
import { Agent, serveHttp } from '../lib/http.js';
import { controlView } from '../lib/ctl/adapter.js';
import { CTL_OPS } from '../kern/ctl/ops.js';
import type { CtlSystem } from '../kern/ctl/system.js';
import { percentile, timedLoad, vmstatAndLeakCheck, zoneUse, type DemoHooks } from './netdemo.js';

export interface HttpDemoOptions {
  seconds: number;
  cpus?: number;
  /** Keep-alive connections of the load generator (one request in flight on each). */
  conns?: number;
  progress?: boolean;
  out?: (s: string) => void;
  /** Stop the load early when this settles (Ctrl-C); the summary still prints. */
  until?: Promise<void>;
  hooks?: DemoHooks;
}

export const HTTP_SERVER_ADDR = '10.0.0.2';
export const HTTP_PORT = 80;
const MAX_SAMPLES = 1 << 21;

/**
 * One server address per CPU: netisr places a TCP connection by its address
 * pair, hashed as each host receives it (docs/tcp-mp.md), so CPU c carries
 * both ends of a connection to 10.0.0.x when the pair hashes to c from
 * either side (the 2-tuple Toeplitz hash is not symmetric). Takes the first
 * such x >= 2 for every CPU, else the first that puts the client's end there.
 */
export function serverAddrsPerCpu(ncpus: number): string[] {
  const cl = toAddr('10.0.0.1');
  const both: (string | undefined)[] = new Array(ncpus).fill(undefined);
  const one: (string | undefined)[] = new Array(ncpus).fill(undefined);
  for (let x = 2; x < 255; x++) {
    const a = toAddr(`10.0.0.${x}`);
    const c = rssAddrCpu(a, cl, ncpus);
    one[c] ??= `10.0.0.${x}`;
    if (rssAddrCpu(cl, a, ncpus) === c) both[c] ??= `10.0.0.${x}`;
  }
  return both.map((a, c) => a ?? one[c] ?? HTTP_SERVER_ADDR);
}

/** One netstat report of the control view, as `slabnet netstat` prints it. */
async function netstatText(view: CtlSystem, args: Record<string, unknown>): Promise<string> {
  const r = (await CTL_OPS.netstat(view, args, { uid: 0, gid: 0, pid: process.pid } as never)) as { text: string };
  return r.text;
}

/** The reply body for a path: small and deterministic, so the client can check it. */
export function httpDemoBody(path: string): string {
  return `hello from slabnet ${path}\n`;
}

/** Run the HTTP demo; returns the exit code (1 on a leak or when no request was answered). */
export async function runHttpDemo(o: HttpDemoOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const ncpus = o.cpus ?? Math.max(2, Math.min(4, availableParallelism()));
  const nconns = o.conns ?? 8;
  const uma = Uma.create({ size: 256 << 20, ncpus: ncpus + 4 });
  const before = zoneUse(uma);
  const t0 = performance.now();
  const sys = await System.start({ cpus: ncpus, uma });
  const client = sys.addStack('client');
  const server = sys.addStack('server');
  const [, sif] = sys.link(client, server, { a: '10.0.0.1/24', b: `${HTTP_SERVER_ADDR}/24` });
  const targets = serverAddrsPerCpu(ncpus);
  for (const a of targets) if (a !== HTTP_SERVER_ADDR) sif.addAddress(`${a}/24`);
  await sys.up();
  const view = controlView(sys);
  out(`slabnet: ${ncpus} CPU workers run TCP/IP for host client 10.0.0.1 (HTTP load generator) <-> host server ${targets.join(', ')} (Node's http.createServer on slabnet TCP port ${HTTP_PORT}), in-memory link`);
  out(`  ${nconns} keep-alive connections, spread over the CPUs by server address (CPU c serves ${targets.map((a, c) => `${c}: ${a}`).join(', ')})`);
  let early = false;
  void o.until?.then(() => (early = true));
  const samples = new Float64Array(MAX_SAMPLES);
  let nsamples = 0;
  /** The first request of each connection waits for its handshake (and a cold path): reported apart. */
  let firstMax = 0;
  let answered = 0;
  let bad = 0;
  let errors = 0;
  let running = true;
  const accepted: MpSocket[] = [];
  const hs = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    const body = httpDemoBody(req.url ?? '/');
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  const srv = createServer({ stack: server }, (s) => accepted.push(s));
  const stopServing = serveHttp(hs, srv);
  const agent = new Agent(client, { keepAlive: true, maxSockets: nconns });
  try {
    await o.hooks?.started?.(sys);
    await new Promise<void>((res, rej) => {
      srv.once('error', rej);
      srv.listen(HTTP_PORT, () => res());
    });
    /** One GET; resolves with its latency (ms), or -1 on a wrong answer. */
    const get = (host: string, path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const t = performance.now();
        const req = http.request({ host, port: HTTP_PORT, path, agent }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve(res.statusCode === 200 && text === httpDemoBody(path) ? performance.now() - t : -1));
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
    const loop = async (k: number): Promise<void> => {
      let i = 0;
      const host = targets[k % targets.length];
      while (running) {
        try {
          const first = i === 0;
          const ms = await get(host, `/c${k}/r${i++}`);
          if (ms < 0) bad++;
          else {
            answered++;
            if (first) firstMax = Math.max(firstMax, ms);
            else if (nsamples < MAX_SAMPLES) samples[nsamples++] = ms;
          }
        } catch {
          errors++;
          if (errors > 100) return;
        }
      }
    };
    const tStart = performance.now();
    const loops = Array.from({ length: nconns }, (_, k) => loop(k));
    const bar = await timedLoad(o.seconds, o.progress, tStart, () => answered, () => early);
    running = false;
    await Promise.all(loops);
    const elapsed = (performance.now() - tStart) / 1000;
    bar?.stop();
    // The table while the keep-alive connections are still ESTABLISHED.
    const anTable = await netstatText(view, { report: 'an' });
    const lat = samples.subarray(0, nsamples).sort();
    out('');
    out(`${answered} HTTP requests answered in ${elapsed.toFixed(2)} s: ${Math.round(answered / elapsed)} requests/s (${nconns} keep-alive connections x 1 in flight, GET over slabnet TCP; ${accepted.length} connections accepted, ${bad} bad, ${errors} errors)`);
    out(`latency ms: p50 ${percentile(lat, 50).toFixed(3)}  p90 ${percentile(lat, 90).toFixed(3)}  p99 ${percentile(lat, 99).toFixed(3)}  max ${(lat[lat.length - 1] ?? 0).toFixed(3)}  (first request of each connection, with its handshake: max ${firstMax.toFixed(3)})`);
    out('');
    out('netstat -an:');
    out(anTable);
  } finally {
    running = false;
    agent.destroy();
    stopServing();
    for (const s of accepted) s.destroy();
    await new Promise<void>((res) => {
      srv.close(() => res());
      setTimeout(res, 2000);
    });
    hs.close();
    await srv.settled();
    for (const s of accepted) await s.settled();
    out('');
    out(`netstat -s (server ${targets.join(", ")}; summed over CPUs from the arena):`);
    out(await netstatText(view, { report: 's', host: 'server' }));
    out('');
    out('netstat -s (client 10.0.0.1, the load generator):');
    out(await netstatText(view, { report: 's', host: 'client' }));
    out('');
    out('netstat -i:');
    out(sys.netstatI());
    out('');
    out('netstat -m:');
    out(netstatM(sys.mb));
    await o.hooks?.stopping?.();
    await sys.stop();
    sys.mb.drainPacketCache();
  }
  if (!vmstatAndLeakCheck(uma, before, out)) return 1;
  out(`no leaks: every zone is back to its starting use (${((performance.now() - t0) / 1000).toFixed(1)} s in all)`);
  return answered > 0 ? 0 : 1;
}
