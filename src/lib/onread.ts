/**
 * Node's onread option of net.connect / net.Socket, shared by the
 * single-thread Socket (lib/net.ts) and the worker-CPU MpSocket
 * (lib/netmp.ts): data is copied from so_rcv straight into the user's
 * buffer and callback(nread, buf) runs instead of 'data' events.
 */
import { ArgumentError } from '../kern/errors.js';

/** net.Socket's onread option: a reusable buffer (or a function giving one before every read) and the callback; false from it pauses reading. */
export interface OnRead {
  buffer: Uint8Array | (() => Uint8Array);
  callback: (nread: number, buf: Uint8Array) => boolean | void;
}

/** Validate an onread option (null when absent); throws ArgumentError on a bad shape. */
export function checkOnRead(o: unknown): OnRead | null {
  if (o === undefined || o === null) return null;
  const r = o as OnRead;
  if (typeof r !== 'object' || typeof r.callback !== 'function' || (typeof r.buffer !== 'function' && !(r.buffer instanceof Uint8Array))) {
    throw new ArgumentError('onread: must be { buffer: Buffer | Uint8Array | () => Buffer, callback(nread, buf) }');
  }
  return r;
}
