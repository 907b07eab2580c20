/**
 * Loader and types of the native TAP addon (native/tap.c, built by node-gyp
 * into build/Release/slabnet_tap.node at install time or by
 * `npm run build:native`). Loaded lazily from compiled code with
 * createRequire, once per thread (every worker that owns a TAP queue loads it
 * into its own environment).
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { SlabnetError } from '../../kern/errors.js';

/** An opaque poll registration returned by pollStart. */
export type TapPollHandle = { readonly __tapPoll: unique symbol };

export interface TapAddon {
  /** Create or attach to a multi-queue TAP: one non-blocking fd per queue. Throws ERR_SLABNET_TAP_*. */
  open(name: string, queues: number): { name: string; fds: number[] };
  /** One frame into u8[off, off+len): bytes read, or -errno (-11 = EAGAIN: nothing queued). */
  read(fd: number, u8: Uint8Array, off: number, len: number): number;
  /** One frame from u8[off, off+len): bytes written, or -errno. */
  write(fd: number, u8: Uint8Array, off: number, len: number): number;
  /** One frame gathered from n (offset, length) pairs of iov into u8: bytes written, or -errno. */
  writev(fd: number, u8: Uint8Array, iov: Int32Array, n: number): number;
  close(fd: number): number;
  /** Call cb(status) on this thread's event loop whenever fd is readable. */
  pollStart(fd: number, cb: (status: number) => void): TapPollHandle;
  pollStop(h: TapPollHandle): void;
  /** Whether the poll keeps this thread's event loop alive. */
  pollRef(h: TapPollHandle, on: boolean): void;
}

export const EAGAIN = 11;
export const EIO = 5;

/** Thrown when the addon was not built (no compiler at install, or not Linux). */
export class TapAddonError extends SlabnetError {
  constructor(message: string) {
    super('ERR_SLABNET_TAP_ADDON', message);
  }
}

let addon: TapAddon | null = null;

/** Path of the built addon: <repo>/build/Release/slabnet_tap.node, from dist/net/phy/. */
export function tapAddonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return join(here, '..', '..', '..', 'build', 'Release', 'slabnet_tap.node');
}

/** Load the addon once for this thread; throws TapAddonError with the fix if it is missing. */
export function loadTapAddon(): TapAddon {
  if (addon !== null) return addon;
  if (process.platform !== 'linux') throw new TapAddonError('TAP interfaces are only available on Linux');
  const path = tapAddonPath();
  if (!existsSync(path)) {
    throw new TapAddonError(`the native TAP addon is not built (${path} is missing): run \`npm run build:native\` (needs python3, make and a C compiler)`);
  }
  const require = createRequire(import.meta.url);
  addon = require(path) as TapAddon;
  return addon;
}
