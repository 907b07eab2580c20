/**
 * errno values (BSD numbering) carried in messages, and the error class user
 * calls throw with them. Protocol handlers return these integers; only the
 * user-facing edge (domsg callers, the socket API) turns them into exceptions.
 */
import { SlabnetError } from './errors.js';

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EBADF = 9;
export const ENOMEM = 12;
export const EFAULT = 14;
export const EBUSY = 16;
export const EINVAL = 22;
export const EPIPE = 32;
export const EAGAIN = 35;
export const EWOULDBLOCK = 35;
export const EINPROGRESS = 36;
export const ENOTSOCK = 38;
export const EDESTADDRREQ = 39;
export const EMSGSIZE = 40;
export const EPROTOTYPE = 41;
export const ENOPROTOOPT = 42;
export const EPROTONOSUPPORT = 43;
export const EOPNOTSUPP = 45;
export const EAFNOSUPPORT = 47;
export const EADDRINUSE = 48;
export const EADDRNOTAVAIL = 49;
export const ENETDOWN = 50;
export const ECONNRESET = 54;
export const ENOBUFS = 55;
export const EISCONN = 56;
export const ENOTCONN = 57;
export const ESHUTDOWN = 58;
export const ETIMEDOUT = 60;
export const ECONNREFUSED = 61;
/** Handler return: "I kept the message and will reply later" (BSD's EJUSTRETURN). */
export const EJUSTRETURN = -2;

const NAMES: Record<number, string> = {
  [EPERM]: 'EPERM',
  [ENOENT]: 'ENOENT',
  [EINTR]: 'EINTR',
  [EBADF]: 'EBADF',
  [ENOMEM]: 'ENOMEM',
  [EFAULT]: 'EFAULT',
  [EBUSY]: 'EBUSY',
  [EINVAL]: 'EINVAL',
  [EPIPE]: 'EPIPE',
  [EAGAIN]: 'EAGAIN',
  [EINPROGRESS]: 'EINPROGRESS',
  [ENOTSOCK]: 'ENOTSOCK',
  [EDESTADDRREQ]: 'EDESTADDRREQ',
  [EMSGSIZE]: 'EMSGSIZE',
  [EPROTOTYPE]: 'EPROTOTYPE',
  [ENOPROTOOPT]: 'ENOPROTOOPT',
  [EPROTONOSUPPORT]: 'EPROTONOSUPPORT',
  [EOPNOTSUPP]: 'EOPNOTSUPP',
  [EAFNOSUPPORT]: 'EAFNOSUPPORT',
  [EADDRINUSE]: 'EADDRINUSE',
  [EADDRNOTAVAIL]: 'EADDRNOTAVAIL',
  [ENETDOWN]: 'ENETDOWN',
  [ECONNRESET]: 'ECONNRESET',
  [ENOBUFS]: 'ENOBUFS',
  [EISCONN]: 'EISCONN',
  [ENOTCONN]: 'ENOTCONN',
  [ESHUTDOWN]: 'ESHUTDOWN',
  [ETIMEDOUT]: 'ETIMEDOUT',
  [ECONNREFUSED]: 'ECONNREFUSED',
};

/** The symbolic name of an errno value ("E123" when unknown). */
export function errnoName(errno: number): string {
  return NAMES[errno] ?? `E${errno}`;
}

/**
 * A failed request: `code` is the symbolic errno ("EINVAL"), as Node's own
 * system errors carry it, and `errno` the number.
 */
export class ErrnoError extends SlabnetError {
  readonly errno: number;
  constructor(errno: number, what: string) {
    super(errnoName(errno), `${what}: ${errnoName(errno)}`);
    this.errno = errno;
  }
}

/** Throw an ErrnoError unless `errno` is 0. */
export function check(errno: number, what: string): void {
  if (errno !== 0) throw new ErrnoError(errno, what);
}
