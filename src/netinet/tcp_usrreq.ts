/**
 * TCP user requests (tcp_usrreq.c + the socket calls above it): a
 * syscall-shaped, single-thread API bound to one Stack. Every call runs on
 * the stack's thread, returns at once (nothing blocks: a caller emulates a
 * blocking socket with poll() and the stack's thread), and reports failure
 * as a negative BSD errno (src/kern/errno.ts). Constants are in tcp_api.ts.
 *
 * EXPORTED API (stable; changes are announced in /work/wt/REQUESTS-pd.md)
 *
 *   import { TcpSockets } from './netinet/tcp_usrreq.js';
 *   const so = new TcpSockets(stack);      // or stack.tcp.sockets (same object)
 *
 *   so.socket(): number                      id > 0, or -errno (-ENOBUFS)
 *   so.bind(id, addr: number, port: number): number         0 | -EADDRINUSE | -EADDRNOTAVAIL | -EINVAL
 *   so.listen(id, backlog: number): number   0 | -EINVAL      (binds an ephemeral port when unbound;
 *                                                              backlog capped by kern.ipc.soacceptqueue)
 *   so.accept(id): number                    new id | -EAGAIN (none yet) | -EINVAL (not listening)
 *                                            | -ECONNABORTED
 *   so.connect(id, addr: number, port: number): number
 *                                            -EINPROGRESS (SYN sent; always, blocking or not: poll for
 *                                            POLLOUT or POLLERR, then SO_ERROR) | -EALREADY (connecting)
 *                                            | -EISCONN | -EADDRNOTAVAIL | -ENETUNREACH | -EINVAL | 0 never
 *   so.read(id, buf: Uint8Array, flags = 0): number
 *                                            n > 0 | 0 (EOF: peer's FIN) | -EAGAIN (nothing yet)
 *                                            | -ENOTCONN | -ECONNRESET / -ETIMEDOUT / ... (so_error,
 *                                            reported once, then 0). flags: MSG_PEEK, MSG_DONTWAIT,
 *                                            MSG_WAITALL (returns -EAGAIN until buf.length bytes or EOF)
 *   so.write(id, buf: Uint8Array, flags = 0): number
 *                                            n > 0 (bytes taken; may be < buf.length when so_snd fills)
 *                                            | -EAGAIN (so_snd full) | -EPIPE (shut for writing / peer
 *                                            reset) | -ENOTCONN | so_error
 *   so.shutdown(id, how: SHUT_RD|SHUT_WR|SHUT_RDWR): number  0 | -ENOTCONN | -EINVAL
 *   so.close(id): number                     0 | -EBADF. Graceful (FIN) unless SO_LINGER {on, 0}
 *                                            (RST) or unread data (RST, as FreeBSD); the id is free at
 *                                            once, the connection finishes in the stack.
 *   so.setsockopt(id, level, name, value: number, value2 = 0): number      0 | -errno
 *                                            SO_LINGER: value = l_onoff, value2 = l_linger (seconds)
 *   so.getsockopt(id, level, name, out: Int32Array): number                0 | -errno; value in out[0]
 *                                            (SO_LINGER: out[0] = l_onoff, out[1] = l_linger)
 *       SOL_SOCKET: SO_RCVBUF, SO_SNDBUF (FreeBSD rounding, kern.ipc.maxsockbuf: -ENOBUFS), SO_ERROR
 *                   (read clears it), SO_LINGER, SO_KEEPALIVE, SO_REUSEADDR, SO_REUSEPORT,
 *                   SO_ACCEPTCONN (get), SO_TYPE (get: SOCK_STREAM = 1)
 *       IPPROTO_IP: IP_TTL, IP_TOS
 *       IPPROTO_TCP: TCP_NODELAY, TCP_MAXSEG, TCP_NOOPT, TCP_NOPUSH, TCP_KEEPINIT, TCP_KEEPIDLE,
 *                    TCP_KEEPINTVL (seconds), TCP_KEEPCNT
 *   so.info(id): TcpInfo | null              TCP_INFO (tcp_api.ts), null for a bad id
 *   so.fcntl(id, cmd: F_GETFL|F_SETFL, arg = 0): number
 *                                            F_GETFL: O_RDWR | (O_NONBLOCK if set); F_SETFL: 0
 *   so.sockname(id) / so.peername(id): { addr: number; port: number } | null
 *   so.poll(id): number                      POLLIN (data, EOF, or a connection to accept) | POLLOUT
 *                                            (connected and so_snd has room) | POLLERR (so_error set)
 *                                            | POLLHUP (peer closed and we shut down, or reset)
 *                                            | POLLNVAL (bad id)
 *   so.list(): TcpConnInfo[]                 every PCB (listeners, connections, TIME_WAIT) for netstat -an
 *   so.drop(laddr, lport, faddr, fport): number   tcpdrop: 0 | -ESRCH (sends RST, frees the PCB)
 *   so.onwakeup: ((id: number) => void) | null
 *                                            called (on the stack's thread) when an id's poll() bits
 *                                            may have changed: data, room, connect done, error, accept
 *
 * Addresses are IPv4 as unsigned 32-bit numbers (10.0.0.1 = 0x0a000001),
 * ports plain numbers. Sysctls: stack.tcp.sysctlNodes() (net.inet.tcp.*,
 * kern.ipc.soacceptqueue); counters: stack.tcp.stats (struct tcpstat),
 * printed by netstat -s. Runs on the stack's thread only; no lock; never sleeps.
 */
