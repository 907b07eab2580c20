/**
 * The Prometheus endpoint on a TCP port of a slabnet stack itself: Node's
 * http.Server on slabnet TCP (lib/http.ts) answering `GET /metrics` with the
 * same exposition the control socket's "metrics" op gives
 * (src/kern/ctl/metrics.ts), so a scraper reaches it over the network the
 * stack serves (a TAP device, a user device, a link) rather than through the
 * local UNIX socket. Main thread; the counters are read from the arena as
 * the control socket reads them.
 *
 *   const m = await serveMetrics(sys, sys.stack('server'), { port: 9100 });
 *   ...
 *   await m.close();
 */
import http from 'node:http';
import type { System } from '../topology.js';
import type { CtlSystem } from '../../kern/ctl/system.js';
import { formatMetrics } from '../../kern/ctl/metrics.js';
import { createServer, type StackLike } from '../net.js';
import { serveHttp } from '../http.js';
import { controlView } from './adapter.js';

export interface MetricsHttpOptions {
  /** TCP port on the stack (default 9100, Prometheus's node exporter port). */
  port?: number;
  /** Local address to bind (default: every address of the stack). */
  host?: string;
  /** Path of the exposition (default '/metrics'). */
  path?: string;
}

export interface MetricsHttp {
  readonly port: number;
  close(): Promise<void>;
}

/** Prometheus text format 0.0.4. */
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Serve `system`'s counters over HTTP on `stack` (a stack of that system).
 * Resolves once listening. Other paths get 404, methods other than GET and
 * HEAD get 405; a failure to read the counters is a 500 with its message.
 */
export function serveMetrics(system: System | CtlSystem, stack: StackLike, o: MetricsHttpOptions = {}): Promise<MetricsHttp> {
  const view: CtlSystem = 'cpuLoad' in system ? system : controlView(system);
  const path = o.path ?? '/metrics';
  const web = http.createServer((req, res) => {
    if (req.url !== path) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    formatMetrics(view).then(
      (text) => res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': Buffer.byteLength(text) }).end(req.method === 'HEAD' ? undefined : text),
      (e: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`),
    );
  });
  const listener = createServer({ stack });
  const unhook = serveHttp(web, listener);
  const port = o.port ?? 9100;
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    const onListening = (): void => {
      listener.off('error', reject);
      resolve({
        port,
        close: () =>
          new Promise<void>((done) => {
            unhook();
            web.close();
            listener.close(() => done());
          }),
      });
    };
    if (o.host !== undefined) listener.listen(port, o.host, onListening);
    else listener.listen(port, onListening);
  });
}
