/**
 * errno values of the network stack: the MP core's BSD numbering
 * (src/kern/errno.ts) plus the routing ones it does not define, and the error
 * the socket API throws with them (code = the symbolic name, as Node's own
 * system errors).
 */
import { SlabnetError } from './errors.js';
import { errnoName } from './errno.js';
export { EADDRINUSE, EADDRNOTAVAIL, EINVAL, EMSGSIZE, ENOBUFS, EISCONN, ENOTCONN, EDESTADDRREQ, ECONNREFUSED } from './errno.js';
export const EACCES = 13;
export const ENETUNREACH = 51;
export const EHOSTDOWN = 64;
export const EHOSTUNREACH = 65;

const MORE: Record<number, string> = { [EACCES]: 'EACCES', [ENETUNREACH]: 'ENETUNREACH', [EHOSTDOWN]: 'EHOSTDOWN', [EHOSTUNREACH]: 'EHOSTUNREACH' };

export function netErrnoName(e: number): string {
  return MORE[e] ?? errnoName(e);
}

export class NetError extends SlabnetError {
  readonly errno: number;
  readonly syscall: string;
  constructor(errno: number, syscall: string) {
    super(netErrnoName(errno), `${syscall} ${netErrnoName(errno)}`);
    this.errno = errno;
    this.syscall = syscall;
  }
}
