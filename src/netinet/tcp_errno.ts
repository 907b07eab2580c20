/**
 * The BSD errno values TCP returns, all from the one table
 * (src/kern/errno.ts), so tcp_* files import them from one place.
 */
export { EADDRINUSE, EADDRNOTAVAIL, EAGAIN, EBADF, ECONNREFUSED, ECONNRESET, EINPROGRESS, EINVAL, EISCONN, ENOBUFS, ENOPROTOOPT, ENOTCONN, EOPNOTSUPP, EPIPE, ETIMEDOUT } from '../kern/errno.js';
export { ESRCH as ESRCH_, EALREADY as EALREADY_, ECONNABORTED as ECONNABORTED_, EHOSTUNREACH, ENETUNREACH } from '../kern/errno.js';
