/**
 * The symbolic constants packetdrill scripts name, with FreeBSD's values
 * (the suite is FreeBSD's), and strerror texts for the report. errno values
 * come from src/kern/errno.ts where it has them; the rest are FreeBSD's
 * <sys/errno.h> numbers.
 */
import * as E from '../kern/errno.js';
// The BSD constants the stack defines are the stack's own (one table); the script names map onto them.
export { IPPROTO_IP, IPPROTO_TCP, SOL_SOCKET, SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT, SO_ERROR, SO_TYPE, TCP_NODELAY, TCP_MAXSEG, TCP_NOPUSH, TCP_NOOPT, TCP_INFO, TCP_KEEPINIT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, IP_TOS, IP_TTL, F_GETFL, F_SETFL, MSG_WAITALL, MSG_DONTWAIT, MSG_NOSIGNAL, POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL, SHUT_RD, SHUT_WR, SHUT_RDWR, TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE, TCPI_OPT_ECN, TCPI_OPT_TOE, TCPI_OPT_TFO } from '../netinet/tcp_api.js';
import { IPPROTO_IP, IPPROTO_TCP, SOL_SOCKET, SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT, SO_ERROR, SO_TYPE, TCP_NODELAY, TCP_MAXSEG, TCP_NOPUSH, TCP_NOOPT, TCP_INFO, TCP_KEEPINIT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, IP_TOS, IP_TTL, F_GETFL, F_SETFL, MSG_WAITALL, MSG_DONTWAIT, MSG_NOSIGNAL, POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL, SHUT_RD, SHUT_WR, SHUT_RDWR, TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE, TCPI_OPT_ECN, TCPI_OPT_TOE, TCPI_OPT_TFO } from '../netinet/tcp_api.js';

export const EALREADY = 37;
export const ENETDOWN = 50;
export const ENETUNREACH = 51;
export const ECONNABORTED = 53;
export const EHOSTDOWN = 64;
export const EHOSTUNREACH = 65;
export const EISCONN = E.EISCONN;

/** errno name -> [value, FreeBSD strerror text]. */
const ERRNOS: Record<string, [number, string]> = {
  EPERM: [E.EPERM, 'Operation not permitted'],
  ENOENT: [E.ENOENT, 'No such file or directory'],
  EINTR: [E.EINTR, 'Interrupted system call'],
  EBADF: [E.EBADF, 'Bad file descriptor'],
  ENOMEM: [E.ENOMEM, 'Cannot allocate memory'],
  EFAULT: [E.EFAULT, 'Bad address'],
  EBUSY: [E.EBUSY, 'Device busy'],
  EINVAL: [E.EINVAL, 'Invalid argument'],
  EPIPE: [E.EPIPE, 'Broken pipe'],
  EAGAIN: [E.EAGAIN, 'Resource temporarily unavailable'],
  EWOULDBLOCK: [E.EWOULDBLOCK, 'Resource temporarily unavailable'],
  EINPROGRESS: [E.EINPROGRESS, 'Operation now in progress'],
  EALREADY: [EALREADY, 'Operation already in progress'],
  ENOTSOCK: [E.ENOTSOCK, 'Socket operation on non-socket'],
  EDESTADDRREQ: [E.EDESTADDRREQ, 'Destination address required'],
  EMSGSIZE: [E.EMSGSIZE, 'Message too long'],
  EPROTOTYPE: [E.EPROTOTYPE, 'Protocol wrong type for socket'],
  ENOPROTOOPT: [E.ENOPROTOOPT, 'Protocol not available'],
  EPROTONOSUPPORT: [E.EPROTONOSUPPORT, 'Protocol not supported'],
  EOPNOTSUPP: [E.EOPNOTSUPP, 'Operation not supported'],
  EAFNOSUPPORT: [E.EAFNOSUPPORT, 'Address family not supported by protocol family'],
  EADDRINUSE: [E.EADDRINUSE, 'Address already in use'],
  EADDRNOTAVAIL: [E.EADDRNOTAVAIL, "Can't assign requested address"],
  ENETDOWN: [ENETDOWN, 'Network is down'],
  ENETUNREACH: [ENETUNREACH, 'Network is unreachable'],
  ECONNABORTED: [ECONNABORTED, 'Software caused connection abort'],
  ECONNRESET: [E.ECONNRESET, 'Connection reset by peer'],
  ENOBUFS: [E.ENOBUFS, 'No buffer space available'],
  EISCONN: [E.EISCONN, 'Socket is already connected'],
  ENOTCONN: [E.ENOTCONN, 'Socket is not connected'],
  ESHUTDOWN: [E.ESHUTDOWN, "Can't send after socket shutdown"],
  ETIMEDOUT: [E.ETIMEDOUT, 'Operation timed out'],
  ECONNREFUSED: [E.ECONNREFUSED, 'Connection refused'],
  EHOSTDOWN: [EHOSTDOWN, 'Host is down'],
  EHOSTUNREACH: [EHOSTUNREACH, 'No route to host'],
};

/** The strerror text of an errno value. */
export function strerror(errno: number): string {
  for (const v of Object.values(ERRNOS)) if (v[0] === errno) return v[1];
  return `Unknown error: ${errno}`;
}

/** The name of an errno value ("EWOULDBLOCK" is reported as EAGAIN, as FreeBSD names 35). */
export function errnoSymbol(errno: number): string {
  for (const [k, v] of Object.entries(ERRNOS)) if (v[0] === errno) return k;
  return `E${errno}`;
}

// Socket layer (FreeBSD <sys/socket.h>, <netinet/in.h>, <netinet/tcp.h>, <fcntl.h>).
export const AF_INET = 2;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const IPPROTO_UDP = 17;

export const SO_DEBUG = 0x1;
export const SO_ACCEPTCONN = 0x2;
export const SO_REUSEADDR = 0x4;
export const SO_KEEPALIVE = 0x8;
export const SO_DONTROUTE = 0x10;
export const SO_BROADCAST = 0x20;
export const SO_LINGER = 0x80;
export const SO_OOBINLINE = 0x100;
export const SO_REUSEPORT = 0x200;



export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_NONBLOCK = 4;

export const MSG_OOB = 0x1;
export const MSG_PEEK = 0x2;
export const MSG_DONTROUTE = 0x4;
export const MSG_EOR = 0x8;

export const POLLRDNORM = 0x0040;
export const POLLRDBAND = 0x0080;
export const POLLWRBAND = 0x0100;
/** poll bits by name, in FreeBSD's order, for flags_to_string-style messages. */
export const POLL_FLAGS: [string, number][] = [
  ['POLLIN', POLLIN], ['POLLPRI', POLLPRI], ['POLLOUT', POLLOUT], ['POLLERR', POLLERR], ['POLLHUP', POLLHUP], ['POLLNVAL', POLLNVAL],
  ['POLLRDNORM', POLLRDNORM], ['POLLRDBAND', POLLRDBAND], ['POLLWRBAND', POLLWRBAND],
];


/** TCP states (FreeBSD <netinet/tcp_fsm.h>); tcpi_state reports these. */
export const TCP_STATES = ['CLOSED', 'LISTEN', 'SYN_SENT', 'SYN_RECEIVED', 'ESTABLISHED', 'CLOSE_WAIT', 'FIN_WAIT_1', 'CLOSING', 'LAST_ACK', 'FIN_WAIT_2', 'TIME_WAIT'] as const;


const SYMBOLS: Record<string, number> = {
  AF_INET, PF_INET: AF_INET, SOCK_STREAM, SOCK_DGRAM, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP, SOL_SOCKET,
  SO_DEBUG, SO_ACCEPTCONN, SO_REUSEADDR, SO_KEEPALIVE, SO_DONTROUTE, SO_BROADCAST, SO_LINGER, SO_OOBINLINE, SO_REUSEPORT,
  SO_SNDBUF, SO_RCVBUF, SO_SNDLOWAT, SO_RCVLOWAT, SO_ERROR, SO_TYPE,
  TCP_NODELAY, TCP_MAXSEG, TCP_NOPUSH, TCP_NOOPT, TCP_INFO, TCP_KEEPINIT, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT,
  // FreeBSD's RACK stack options (tcp.h); the default stack does not know them.
  TCP_RACK_PACE_REDUCE: 1053, TCP_RACK_PACE_MAX_SEG: 1054, TCP_RACK_PACE_ALWAYS: 1055, TCP_RACK_PACE_RATE_CA: 1109, TCP_RACK_PACE_RATE_SS: 1110, TCP_RACK_PACE_RATE_REC: 1111,
  IP_TOS, IP_TTL,
  F_GETFL, F_SETFL, O_RDONLY, O_WRONLY, O_RDWR, O_NONBLOCK,
  MSG_OOB, MSG_PEEK, MSG_DONTROUTE, MSG_EOR, MSG_WAITALL, MSG_DONTWAIT, MSG_NOSIGNAL,
  SHUT_RD, SHUT_WR, SHUT_RDWR,
  POLLIN, POLLPRI, POLLOUT, POLLERR, POLLHUP, POLLNVAL, POLLRDNORM, POLLRDBAND, POLLWRBAND, POLLWRNORM: POLLOUT,
  TCPI_OPT_TIMESTAMPS, TCPI_OPT_SACK, TCPI_OPT_WSCALE, TCPI_OPT_ECN, TCPI_OPT_TOE, TCPI_OPT_TFO,
  IPTOS_ECN_NOTECT: 0, IPTOS_ECN_ECT1: 1, IPTOS_ECN_ECT0: 2, IPTOS_ECN_CE: 3,
  IPTOS_DSCP_CS0: 0x00, IPTOS_DSCP_CS1: 0x20, IPTOS_DSCP_CS2: 0x40, IPTOS_DSCP_CS3: 0x60,
  IPTOS_DSCP_CS4: 0x80, IPTOS_DSCP_CS5: 0xa0, IPTOS_DSCP_CS6: 0xc0, IPTOS_DSCP_CS7: 0xe0,
  IPTOS_DSCP_AF11: 0x28, IPTOS_DSCP_AF12: 0x30, IPTOS_DSCP_AF13: 0x38, IPTOS_DSCP_AF21: 0x48, IPTOS_DSCP_AF22: 0x50, IPTOS_DSCP_AF23: 0x58,
  IPTOS_DSCP_AF31: 0x68, IPTOS_DSCP_AF32: 0x70, IPTOS_DSCP_AF33: 0x78, IPTOS_DSCP_AF41: 0x88, IPTOS_DSCP_AF42: 0x90, IPTOS_DSCP_AF43: 0x98,
  IPTOS_DSCP_EF: 0xb8, IPTOS_LOWDELAY: 0x10, IPTOS_THROUGHPUT: 0x08, IPTOS_RELIABILITY: 0x04,
};
TCP_STATES.forEach((s, i) => {
  SYMBOLS[`TCPS_${s}`] = i;
  SYMBOLS[`TCPI_${s}`] = i;
});
// FreeBSD spells one state differently in tcpi names used by the suite.
SYMBOLS.TCPI_SYN_RCVD = 3;
for (const [k, v] of Object.entries(ERRNOS)) SYMBOLS[k] = v[0];

/** The value of a symbol, or undefined when the runner does not know it. */
export function symbolValue(name: string): number | undefined {
  return SYMBOLS[name];
}

/** ICMP type and code names of the dialect (icmp_packet.c) to numbers. */
const ICMP_TYPES: Record<string, [number, Record<string, number>]> = {
  echo_reply: [0, {}],
  unreachable: [
    3,
    {
      net_unreachable: 0, host_unreachable: 1, protocol_unreachable: 2, port_unreachable: 3, frag_needed: 4, source_route_failed: 5,
      net_unknown: 6, host_unknown: 7, source_host_isolated: 8, net_prohibited: 9, host_prohibited: 10, net_unreachable_for_tos: 11,
      host_unreachable_for_tos: 12, packet_filtered: 13, precedence_violation: 14, precedence_cutoff: 15,
    },
  ],
  source_quench: [4, {}],
  redirect: [5, {}],
  echo_request: [8, {}],
  time_exceeded: [11, { ttl_exceeded_in_transit: 0, frag_reass_exceeded: 1 }],
  parameter_problem: [12, {}],
  timestamp_request: [13, {}],
  timestamp_reply: [14, {}],
  information_request: [15, {}],
  information_reply: [16, {}],
  address_mask_request: [17, {}],
  address_mask_reply: [18, {}],
};

/** Resolve an ICMP type/code pair; codes may also be given as numbers. Returns an error string when unknown. */
export function icmpTypeCode(type: string, code: string | null): { type: number; code: number } | string {
  const t = ICMP_TYPES[type];
  if (t === undefined) return `unknown ICMP type '${type}'`;
  if (code === null) return { type: t[0], code: 0 };
  const c = t[1][code] ?? (/^\d+$/.test(code) ? Number(code) : undefined);
  if (c === undefined) return `unknown ICMP code '${code}' for type '${type}'`;
  return { type: t[0], code: c };
}
