/**
 * Argument parsing shared by the two node:dgram-shaped socket front ends,
 * dgram.ts (a socket over a Stack in its own thread) and udpuser.ts (a
 * socket in any thread against a Machine's stack): both accept Node's
 * overloaded bind() arguments and the same message shapes in send().
 * Only the parsing is here; what each socket does with the result (and the
 * checks that differ between them) stays in its own module. Nothing here
 * locks or sleeps; this is the JS-object edge, not a packet path.
 */
import { ArgumentError } from '../kern/errors.js';

/** What send() accepts as its message: bytes, a string, or an array of either (concatenated). */
export type MsgInput = string | Uint8Array | readonly (string | Uint8Array)[];
/** send()'s callback: the byte count on success. */
export type SendCb = (err: Error | null, bytes?: number) => void;

/** bind()'s arguments once the overloads are resolved; address 0 = INADDR_ANY. */
export interface BindArgs {
  port: number;
  address: string | number;
  cb: (() => void) | undefined;
}

/**
 * Resolve bind([port][, address][, callback]) or bind({port, address}[,
 * callback]). Pops the callback off `args`. The port is converted but not
 * range-checked: the caller checks it after its own state checks.
 */
export function parseBindArgs(args: unknown[]): BindArgs {
  let port = 0;
  let address: string | number = 0;
  let cb: (() => void) | undefined;
  if (typeof args[args.length - 1] === 'function') cb = args.pop() as () => void;
  if (typeof args[0] === 'object' && args[0] !== null) {
    const o = args[0] as { port?: number; address?: string };
    port = o.port ?? 0;
    address = o.address ?? 0;
  } else {
    if (args[0] !== undefined) port = Number(args[0]);
    if (args[1] !== undefined) address = args[1] as string;
  }
  return { port, address, cb };
}

/**
 * send()'s message as one byte array: a string is UTF-8 encoded, an array
 * is concatenated, a Uint8Array is used as is (no copy). ArgumentError for
 * anything else.
 */
export function msgBytes(msg: MsgInput): Uint8Array {
  if (typeof msg === 'string') return Buffer.from(msg);
  if (Array.isArray(msg)) return Buffer.concat((msg as (string | Uint8Array)[]).map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
  if (msg instanceof Uint8Array) return msg;
  throw new ArgumentError('send: msg must be a string, a Uint8Array or an array of them');
}
