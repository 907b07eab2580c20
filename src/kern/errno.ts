/**
 * The one errno table of slabnet (FreeBSD's sys/errno.h numbering) and the
 * error class user calls throw with it. Protocol handlers return these
 * integers (in messages, from in_pcbbind, ip_output ...); only the
 * user-facing edge (domsg callers, the socket API, node:dgram shapes) turns
 * them into exceptions, always an ErrnoError.
 *
 * Names are Node's (util.getSystemErrorName): `code` of an ErrnoError is the
 * string a Node system error would carry for the same condition, so code
 * written against node:dgram / node:net branches the same way. Where BSD and
 * Node spell one error differently the table says so (EOPNOTSUPP is Node's
 * 'ENOTSUP'; EWOULDBLOCK is 'EAGAIN'). `errno` is the BSD number (positive;
 * Node's is the negated libuv number of the host, which differs per OS).
 *
 * Linux numbers (the TAP addon's -errno results) never travel past the
 * native edge: src/net/phy/tap-addon.ts translates them with linuxErrno().
 *
 * docs/errors.md lists every code and every error class.
 */
import { SlabnetError } from './errors.js';

export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const EIO = 5;
export const ENXIO = 6;
export const E2BIG = 7;
export const EBADF = 9;
export const EDEADLK = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EFAULT = 14;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const ENFILE = 23;
export const EMFILE = 24;
export const ENOSPC = 28;
export const EPIPE = 32;
export const ERANGE = 34;
export const EAGAIN = 35;
export const EWOULDBLOCK = EAGAIN;
export const EINPROGRESS = 36;
export const EALREADY = 37;
export const ENOTSOCK = 38;
export const EDESTADDRREQ = 39;
export const EMSGSIZE = 40;
export const EPROTOTYPE = 41;
export const ENOPROTOOPT = 42;
export const EPROTONOSUPPORT = 43;
export const ESOCKTNOSUPPORT = 44;
export const EOPNOTSUPP = 45;
export const ENOTSUP = EOPNOTSUPP;
export const EPFNOSUPPORT = 46;
export const EAFNOSUPPORT = 47;
export const EADDRINUSE = 48;
export const EADDRNOTAVAIL = 49;
export const ENETDOWN = 50;
export const ENETUNREACH = 51;
export const ENETRESET = 52;
export const ECONNABORTED = 53;
export const ECONNRESET = 54;
export const ENOBUFS = 55;
export const EISCONN = 56;
export const ENOTCONN = 57;
export const ESHUTDOWN = 58;
export const ETOOMANYREFS = 59;
export const ETIMEDOUT = 60;
export const ECONNREFUSED = 61;
export const ELOOP = 62;
export const ENAMETOOLONG = 63;
export const EHOSTDOWN = 64;
export const EHOSTUNREACH = 65;
export const ENOSYS = 78;
export const ECANCELED = 85;
export const EPROTO = 92;
/** Handler return: "I kept the message and will reply later" (BSD's EJUSTRETURN; never reaches a user). */
export const EJUSTRETURN = -2;

/** BSD number -> Node's name, and the Linux number for the native edge. */
const TABLE: readonly [number, string, number][] = [
  [EPERM, 'EPERM', 1],
  [ENOENT, 'ENOENT', 2],
  [ESRCH, 'ESRCH', 3],
  [EINTR, 'EINTR', 4],
  [EIO, 'EIO', 5],
  [ENXIO, 'ENXIO', 6],
  [E2BIG, 'E2BIG', 7],
  [EBADF, 'EBADF', 9],
  [EDEADLK, 'EDEADLK', 35],
  [ENOMEM, 'ENOMEM', 12],
  [EACCES, 'EACCES', 13],
  [EFAULT, 'EFAULT', 14],
  [EBUSY, 'EBUSY', 16],
  [EEXIST, 'EEXIST', 17],
  [ENODEV, 'ENODEV', 19],
  [EINVAL, 'EINVAL', 22],
  [ENFILE, 'ENFILE', 23],
  [EMFILE, 'EMFILE', 24],
  [ENOSPC, 'ENOSPC', 28],
  [EPIPE, 'EPIPE', 32],
  [ERANGE, 'ERANGE', 34],
  [EAGAIN, 'EAGAIN', 11],
  [EINPROGRESS, 'EINPROGRESS', 115],
  [EALREADY, 'EALREADY', 114],
  [ENOTSOCK, 'ENOTSOCK', 88],
  [EDESTADDRREQ, 'EDESTADDRREQ', 89],
  [EMSGSIZE, 'EMSGSIZE', 90],
  [EPROTOTYPE, 'EPROTOTYPE', 91],
  [ENOPROTOOPT, 'ENOPROTOOPT', 92],
  [EPROTONOSUPPORT, 'EPROTONOSUPPORT', 93],
  [ESOCKTNOSUPPORT, 'ESOCKTNOSUPPORT', 94],
  [EOPNOTSUPP, 'ENOTSUP', 95],
  [EPFNOSUPPORT, 'EPFNOSUPPORT', 96],
  [EAFNOSUPPORT, 'EAFNOSUPPORT', 97],
  [EADDRINUSE, 'EADDRINUSE', 98],
  [EADDRNOTAVAIL, 'EADDRNOTAVAIL', 99],
  [ENETDOWN, 'ENETDOWN', 100],
  [ENETUNREACH, 'ENETUNREACH', 101],
  [ENETRESET, 'ENETRESET', 102],
  [ECONNABORTED, 'ECONNABORTED', 103],
  [ECONNRESET, 'ECONNRESET', 104],
  [ENOBUFS, 'ENOBUFS', 105],
  [EISCONN, 'EISCONN', 106],
  [ENOTCONN, 'ENOTCONN', 107],
  [ESHUTDOWN, 'ESHUTDOWN', 108],
  [ETOOMANYREFS, 'ETOOMANYREFS', 109],
  [ETIMEDOUT, 'ETIMEDOUT', 110],
  [ECONNREFUSED, 'ECONNREFUSED', 111],
  [ELOOP, 'ELOOP', 40],
  [ENAMETOOLONG, 'ENAMETOOLONG', 36],
  [EHOSTDOWN, 'EHOSTDOWN', 112],
  [EHOSTUNREACH, 'EHOSTUNREACH', 113],
  [ENOSYS, 'ENOSYS', 38],
  [ECANCELED, 'ECANCELED', 125],
  [EPROTO, 'EPROTO', 71],
];

const NAMES = new Map<number, string>(TABLE.map(([n, s]) => [n, s]));
const FROM_LINUX = new Map<number, number>(TABLE.map(([n, , l]) => [l, n]));

/** Every errno of the table: [BSD number, Node's name] (docs, tests). */
export function errnoTable(): [number, string][] {
  return TABLE.map(([n, s]) => [n, s]);
}

/** Node's name of an errno value ("E123" when unknown). */
export function errnoName(errno: number): string {
  return NAMES.get(errno) ?? `E${errno}`;
}

/**
 * The native edge: a Linux errno (positive) as our BSD number; an unknown
 * one becomes EIO (it is still an I/O failure, and stays one error kind).
 */
export function linuxErrno(linux: number): number {
  return FROM_LINUX.get(linux) ?? EIO;
}

/** Where an error happened, as Node's system errors carry it (address and port of the request). */
export interface ErrnoDetail {
  address?: string;
  port?: number;
  /** Extra text after Node's "<syscall> <code>" message. */
  info?: string;
}

/**
 * A failed system call: `code` is Node's name of the errno ('ECONNREFUSED'),
 * `errno` the BSD number, `syscall` the call ('bind', 'send', 'connect',
 * 'recvmsg' ...), and, when the request had one, `address` / `port`. The
 * message has Node's shape: "bind EADDRINUSE 0.0.0.0:7".
 */
export class ErrnoError extends SlabnetError {
  readonly errno: number;
  readonly syscall: string;
  readonly address?: string;
  readonly port?: number;
  constructor(errno: number, syscall: string, detail: ErrnoDetail = {}) {
    const code = errnoName(errno);
    let msg = `${syscall} ${code}`;
    if (detail.address !== undefined) msg += detail.port !== undefined ? ` ${detail.address}:${detail.port}` : ` ${detail.address}`;
    if (detail.info !== undefined) msg += ` (${detail.info})`;
    super(code, msg);
    this.errno = errno;
    this.syscall = syscall;
    if (detail.address !== undefined) this.address = detail.address;
    if (detail.port !== undefined) this.port = detail.port;
  }
}

/** Throw an ErrnoError unless `errno` is 0. */
export function check(errno: number, syscall: string, detail?: ErrnoDetail): void {
  if (errno !== 0) throw new ErrnoError(errno, syscall, detail);
}
