/**
 * What the runner needs from the stack's TCP: sockets with BSD semantics
 * (errno results, never blocking: a call that would block answers
 * EWOULDBLOCK / EINPROGRESS and the syscall layer retries it on the manual
 * clock), TCP_INFO, the connection list that sockstat prints and the drop
 * that tcpdrop asks for.
 *
 * The stack's TCP (src/netinet/tcp_usrreq.ts) is adapted to this shape in
 * tcpadapter.ts; tests may plug in a fake. All calls run on the stack's
 * thread and return at once.
 */

/** An IPv4 endpoint. */
export interface Endpoint {
  addr: number;
  port: number;
}

/** TCP_INFO as FreeBSD's struct tcp_info names its fields (tcpi_state, tcpi_options, ...). */
export type TcpInfo = Record<string, number>;

/** One row of `sockstat -4 -P tcp`: the socket's endpoints and TCP state name (LISTEN, SYN_RCVD, TIME_WAIT, ...). */
export interface SockstatRow {
  local: Endpoint;
  foreign: Endpoint | null;
  /** FreeBSD's tcpstates[] name: CLOSED LISTEN SYN_SENT SYN_RCVD ESTABLISHED CLOSE_WAIT FIN_WAIT_1 CLOSING LAST_ACK FIN_WAIT_2 TIME_WAIT. */
  state: string;
  /** false for connections without a socket (syncache entries, TIME_WAIT after close). */
  hasSocket: boolean;
}

export interface PdSocket {
  /** 0 or an errno. */
  bind(local: Endpoint): number;
  listen(backlog: number): number;
  /** The next completed connection, or an errno (EWOULDBLOCK when none is ready yet). */
  accept(): { so: PdSocket; peer: Endpoint } | number;
  /** 0, EINPROGRESS (the SYN is out), or an errno. */
  connect(remote: Endpoint): number;
  /**
   * Progress of a connect() that answered EINPROGRESS: EINPROGRESS while the
   * handshake runs, 0 once connected, or the error that ended it (taken, as
   * a blocking connect(2) reports it).
   */
  connectStatus(): number;
  /** Bytes queued (a short count when the send buffer fills), or -errno (-EWOULDBLOCK: no room at all). */
  send(data: Uint8Array, flags: number): number;
  /** Up to len bytes; an empty array at end of stream; or -errno (-EWOULDBLOCK: nothing yet). */
  recv(len: number, flags: number): Uint8Array | number;
  shutdown(how: number): number;
  close(): number;
  /** An integer option's value, or -errno. */
  getsockopt(level: number, name: number): number;
  /** A two-int option (SO_LINGER: [l_onoff, l_linger]), or -errno. */
  getsockoptPair(level: number, name: number): [number, number] | number;
  /** 0 or an errno; value2 is SO_LINGER's l_linger. */
  setsockopt(level: number, name: number, value: number, value2?: number): number;
  /** poll(2) bits now ready: POLLIN, POLLOUT, POLLERR, POLLHUP (FreeBSD values). */
  poll(): number;
  /** TCP_INFO, or an errno (FreeBSD: EINVAL/ECONNRESET once the connection is gone). */
  tcpInfo(): TcpInfo | number;
}

export interface PdTcp {
  /** A new TCP socket, or an errno. */
  socket(): PdSocket | number;
  /** Every TCP connection and listener of the stack, for sockstat. */
  sockstat(): SockstatRow[];
  /** tcpdrop: drop the connection between the endpoints; 0 or an errno. */
  drop(local: Endpoint, foreign: Endpoint): number;
  /** The tcp: section of `netstat -s -p tcp` (counters that are not zero), when the TCP keeps them. */
  netstat?(): string;
}
