/**
 * UDP servers that run inside a stack's thread (an MP CPU, or the one
 * thread of a single-thread system): an echo server and the DNS-like
 * responder of dns.ts. They use the stack's node:dgram-shaped sockets
 * (lib/dgram.ts) like any application, and handle their own errors: a send
 * that fails (no buffer, no route, a closed stack) and a socket error are
 * counted in the server's stats, never thrown into the protocol thread.
 */
import { createSocket, type Socket } from '../lib/dgram.js';
import type { Stack } from '../netinet/stack.js';
import { dnsAnswer } from './dns.js';

export interface ServerStats {
  /** Datagrams received. */
  requests: number;
  /** Replies handed to the stack without error. */
  replies: number;
  /** Sends the stack refused (ENOBUFS, EHOSTUNREACH, ENETDOWN ...). */
  sendErrors: number;
  /** Socket errors (e.g. ICMP errors reported on the socket). */
  socketErrors: number;
  /** Requests the server could not parse (no reply). */
  bad: number;
}

export interface UdpServer {
  readonly socket: Socket;
  readonly stats: ServerStats;
  close(): void;
}

function newStats(): ServerStats {
  return { requests: 0, replies: 0, sendErrors: 0, socketErrors: 0, bad: 0 };
}

/**
 * A server on `port` of `stack` that answers each datagram with
 * `answer(request)` (null: no reply, counted as bad). Runs in the stack's
 * thread; never throws from the receive path.
 */
export function udpServer(stack: Stack, port: number, answer: (req: Buffer) => Uint8Array | null, recvBufferSize = 4 << 20): UdpServer {
  const stats = newStats();
  // One callback for every send: counts the outcome, allocates nothing per datagram.
  const sent = (err: Error | null): void => {
    if (err === null) stats.replies++;
    else stats.sendErrors++;
  };
  const s = createSocket(stack, { type: 'udp4', recvBufferSize }, (req, r) => {
    stats.requests++;
    const a = answer(req);
    if (a === null) {
      stats.bad++;
      return;
    }
    try {
      s.send(a, r.port, r.address, sent);
    } catch {
      stats.sendErrors++; // the socket closed under us
    }
  });
  s.on('error', () => stats.socketErrors++);
  s.bind(port);
  return {
    socket: s,
    stats,
    close: () => s.close(),
  };
}

/** UDP echo (RFC 862) on `port`. */
export function echoServer(stack: Stack, port: number): UdpServer {
  return udpServer(stack, port, (req) => req);
}

/** The DNS-like responder (dns.ts) on `port`. */
export function dnsServer(stack: Stack, port: number): UdpServer {
  return udpServer(stack, port, dnsAnswer);
}
