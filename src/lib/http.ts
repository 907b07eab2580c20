/**
 * Node's own http machinery over slabnet TCP (lib/net.ts):
 *
 *   serveHttp(httpServer, slabnetServer)
 *       every connection the slabnet Server accepts is handed to the
 *       http.Server (httpServer.emit('connection', socket)), with TCP_NODELAY
 *       unless the http.Server was made with noDelay: false (as Node's), so an ordinary
 *       http.createServer(handler) serves on a slabnet stack; the returned
 *       function stops the handing over.
 *   new Agent(stack, agentOptions)
 *       an http.Agent whose connections are slabnet connections from
 *       `stack`: http.request({ agent, host: '10.0.0.2', port: 80, ... });
 *       keep-alive, maxSockets and the rest are Node's Agent unchanged.
 *   createConnectionFor(stack)
 *       the function for http.request's `createConnection` option (one
 *       connection per request, no agent).
 *
 * Works on either system: a single-thread stack (lib/net.ts, in the
 * caller's thread) or a stack on the worker CPUs (lib/netmp.ts).
 */
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { connect, type Server, type Socket, type StackLike } from './net.js';
import { isMpStack, connect as connectMp, type MpServer, type MpSocket, type MpStackLike } from './netmp.js';

/** A single-thread stack (lib/net.ts) or a stack of an MP system (lib/netmp.ts). */
export type AnyStack = StackLike | MpStackLike;

/** Hand each connection `server` accepts to `httpServer`; returns the function that stops it. */
export function serveHttp(httpServer: http.Server, server: Server | MpServer): () => void {
  const onConnection = (sock: Socket | MpSocket): void => {
    // Node's http.Server asks its net.Server for TCP_NODELAY (noDelay, default true): without it
    // a response written as headers then body waits on Nagle for the peer's delayed ACK (40 ms).
    if ((httpServer as { noDelay?: boolean }).noDelay !== false) sock.setNoDelay(true);
    httpServer.emit('connection', sock);
  };
  server.on('connection', onConnection);
  return () => {
    server.off('connection', onConnection);
  };
}

/** Options Node's http client passes to createConnection (the parts slabnet uses). */
interface HttpConnectOptions {
  host?: string | null;
  hostname?: string | null;
  port?: number | string | null;
  localAddress?: string;
  localPort?: number;
  timeout?: number;
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
}

function connectFor(stack: AnyStack, o: HttpConnectOptions, cb?: () => void): Socket | MpSocket {
  const port = o.port === undefined || o.port === null ? 80 : Number(o.port);
  const host = o.host ?? o.hostname ?? 'localhost';
  if (isMpStack(stack)) {
    const m = connectMp({ stack, port, host, localPort: o.localPort, noDelay: o.noDelay, keepAlive: o.keepAlive, keepAliveInitialDelay: o.keepAliveInitialDelay }, cb);
    if (o.timeout !== undefined) m.setTimeout(o.timeout);
    return m;
  }
  const s = connect(
    {
      stack,
      port,
      host,
      localAddress: o.localAddress,
      localPort: o.localPort,
      noDelay: o.noDelay,
      keepAlive: o.keepAlive,
      keepAliveInitialDelay: o.keepAliveInitialDelay,
    },
    cb,
  );
  if (o.timeout !== undefined) s.setTimeout(o.timeout);
  return s;
}

/** http.request's `createConnection` option for connections from `stack`. */
export function createConnectionFor(stack: AnyStack): (o: HttpConnectOptions, cb?: () => void) => Duplex {
  return (o, cb) => connectFor(stack, o, cb);
}

/** An http.Agent whose sockets are slabnet TCP connections from one stack. */
export class Agent extends http.Agent {
  readonly stack: AnyStack;

  constructor(stack: AnyStack, opts: http.AgentOptions = {}) {
    super(opts);
    this.stack = stack;
  }

  /** Called by http.Agent for each new socket (Node's hook; net.createConnection by default). */
  override createConnection(o: http.ClientRequestArgs, cb?: (err: Error | null, stream: Duplex) => void): Duplex {
    const s: Socket | MpSocket = connectFor(this.stack, o as HttpConnectOptions, cb && (() => cb(null, s)));
    return s;
  }
}
