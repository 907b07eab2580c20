/**
 * The BSD errno values TCP returns (src/kern/errno.ts, plus the few it
 * does not define), so tcp_* files import them from one place.
 */
export { EADDRINUSE, EADDRNOTAVAIL, EAGAIN, EBADF, ECONNREFUSED, ECONNRESET, EINPROGRESS, EINVAL, EISCONN, ENOBUFS, ENOPROTOOPT, ENOTCONN, EOPNOTSUPP, EPIPE, ETIMEDOUT } from '../kern/errno.js';
export const ESRCH_ = 3;
export const EALREADY_ = 37;
export const ECONNABORTED_ = 53;
export const EHOSTUNREACH = 65;
export const ENETUNREACH = 51;
