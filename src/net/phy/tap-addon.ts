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
import { EAGAIN as BSD_EAGAIN, EIO as BSD_EIO, linuxErrno } from '../../kern/errno.js';

/** An opaque poll registration returned by pollStart. */
export type TapPollHandle = { readonly __tapPoll: unique symbol };

/** open() flag: a struct virtio_net_hdr before every frame, and checksum / TCPv4 segmentation offload. */
export const OPEN_VNET_HDR = 1;
/** TUNSETOFFLOAD bits (linux/if_tun.h) open() reports in `offloads`. */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO_ECN = 0x08;
/** struct virtio_net_hdr (linux/virtio_net.h): flags and gso_type values, and its size. */
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;
export const VIRTIO_NET_HDR_LEN = 10;
/** Int32 words per frame in readBatch's `out` and writeBatch's `hdrs`: [len, flags | gso_type << 8, gso_size | hdr_len << 16, csum_start | csum_offset << 16]. */
export const VNET_WORDS = 4;

export interface TapOpenResult {
  name: string;
  fds: number[];
  /** Every frame carries a virtio_net_hdr (OPEN_VNET_HDR was asked for and granted). */
  vnetHdr: boolean;
  /** TUN_F_* offloads the kernel accepted (0 without vnetHdr). */
  offloads: number;
}

export interface TapAddon {
  /** Create or attach to a multi-queue TAP: one non-blocking fd per queue (flags: OPEN_VNET_HDR). Throws ERR_SLABNET_TAP_*. */
  open(name: string, queues: number, flags?: number): TapOpenResult;
  /** One frame into u8[off, off+len): bytes read, or -errno (BSD numbers: -EAGAIN = nothing queued). */
  read(fd: number, u8: Uint8Array, off: number, len: number): number;
  /** One frame from u8[off, off+len): bytes written, or -errno. */
  write(fd: number, u8: Uint8Array, off: number, len: number): number;
  /** One frame gathered from n (offset, length) pairs of iov into u8: bytes written, or -errno. */
  writev(fd: number, u8: Uint8Array, iov: Int32Array, n: number): number;
  /**
   * Up to `max` frames in one call: frame i into its `per` (offset, length)
   * pieces iov[2*per*i ..]; out[VNET_WORDS*i ..] gets its length (and, with
   * vnet, its virtio header). Frames read, or -errno when the first read failed.
   */
  readBatch(fd: number, u8: Uint8Array, iov: Int32Array, per: number, max: number, out: Int32Array, vnet: boolean): number;
  /** n frames in one call, frame i the next counts[i] pieces of iov (and hdrs[VNET_WORDS*i ..] with vnet): frames the kernel took. */
  writeBatch(fd: number, u8: Uint8Array, iov: Int32Array, counts: Int32Array, n: number, hdrs: Int32Array, vnet: boolean): number;
  close(fd: number): number;
  /** Call cb(status) on this thread's event loop whenever fd is readable. */
  pollStart(fd: number, cb: (status: number) => void): TapPollHandle;
  pollStop(h: TapPollHandle): void;
  /** Whether the poll keeps this thread's event loop alive. */
  pollRef(h: TapPollHandle, on: boolean): void;
}

/**
 * The errnos the TAP path tests for, in the one (BSD) table: the loaded
 * addon's results are translated from Linux numbers here, at the native
 * edge, so nothing past this file ever sees a Linux errno (Linux EAGAIN is
 * 11, BSD's 35).
 */
export const EAGAIN = BSD_EAGAIN;
export const EIO = BSD_EIO;

/** The native result: n >= 0 unchanged, -linux as -bsd. */
function bsdResult(n: number): number {
  return n >= 0 ? n : -linuxErrno(-n);
}

/**
 * Wrap the raw addon (Linux -errno results) so every result is a BSD
 * -errno. One extra call per frame; the common results (>= 0) pass through
 * untouched. open/pollStart throw coded errors and need no translation.
 */
function translated(raw: TapAddon): TapAddon {
  return {
    open: (name, queues, flags) => raw.open(name, queues, flags ?? 0),
    read: (fd, u8, off, len) => bsdResult(raw.read(fd, u8, off, len)),
    write: (fd, u8, off, len) => bsdResult(raw.write(fd, u8, off, len)),
    writev: (fd, u8, iov, n) => bsdResult(raw.writev(fd, u8, iov, n)),
    readBatch: (fd, u8, iov, per, max, out, vnet) => bsdResult(raw.readBatch(fd, u8, iov, per, max, out, vnet)),
    writeBatch: (fd, u8, iov, counts, n, hdrs, vnet) => raw.writeBatch(fd, u8, iov, counts, n, hdrs, vnet),
    close: (fd) => bsdResult(raw.close(fd)),
    pollStart: (fd, cb) => raw.pollStart(fd, cb),
    pollStop: (h) => raw.pollStop(h),
    pollRef: (h, on) => raw.pollRef(h, on),
  };
}

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
  const raw = require(path) as TapAddon;
  if (typeof raw.readBatch !== 'function' || typeof raw.writeBatch !== 'function') {
    throw new TapAddonError(`the native TAP addon at ${path} is older than this code (no readBatch/writeBatch): run \`npm run build:native\``);
  }
  addon = translated(raw);
  return addon;
}
