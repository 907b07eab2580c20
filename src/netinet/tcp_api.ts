/**
 * Constants of the TCP user API (tcp_usrreq.ts), BSD numbering: socket
 * option levels and names, fcntl commands and flags, recv/send flags, poll
 * bits, shutdown modes and TCP_INFO bits. Kept apart so callers (the
 * packetdrill runner, node:net layers) import names without the protocol.
 */

// Levels
export const SOL_SOCKET = 0xffff;
export const IPPROTO_IP = 0;
export const IPPROTO_TCP = 6;

// SOL_SOCKET names (sys/socket.h)
export const SO_DEBUG = 0x0001;
export const SO_ACCEPTCONN = 0x0002;
export const SO_REUSEADDR = 0x0004;
export const SO_KEEPALIVE = 0x0008;
export const SO_DONTROUTE = 0x0010;
export const SO_LINGER = 0x0080;
export const SO_REUSEPORT = 0x0200;
export const SO_SNDBUF = 0x1001;
export const SO_RCVBUF = 0x1002;
export const SO_SNDLOWAT = 0x1003;
export const SO_RCVLOWAT = 0x1004;
export const SO_ERROR = 0x1007;
export const SO_TYPE = 0x1008;

// IPPROTO_IP names (netinet/in.h)
export const IP_TOS = 3;
export const IP_TTL = 4;

// IPPROTO_TCP names (netinet/tcp.h)
export const TCP_NODELAY = 1;
export const TCP_MAXSEG = 2;
export const TCP_NOPUSH = 4;
export const TCP_NOOPT = 8;
export const TCP_INFO = 32;
export const TCP_KEEPINIT = 128;
export const TCP_KEEPIDLE = 256;
export const TCP_KEEPINTVL = 512;
export const TCP_KEEPCNT = 1024;
/** The connection's congestion control algorithm, by name (a string option: setsockoptString). */
export const TCP_CONGESTION = 64;
/** TCP over UDP: the peer's UDP port (host order here; FreeBSD takes network order). */
export const TCP_REMOTE_UDP_ENCAPS_PORT = 71;

// fcntl (sys/fcntl.h)
export const F_GETFL = 3;
export const F_SETFL = 4;
export const O_RDWR = 0x0002;
export const O_NONBLOCK = 0x0004;

// recv/send flags (sys/socket.h)
export const MSG_OOB = 0x01;
export const MSG_PEEK = 0x02;
export const MSG_DONTROUTE = 0x04;
export const MSG_EOR = 0x08;
export const MSG_WAITALL = 0x40;
export const MSG_DONTWAIT = 0x80;
export const MSG_NOSIGNAL = 0x20000;

// shutdown (sys/socket.h)
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;

// poll (sys/poll.h)
export const POLLIN = 0x0001;
export const POLLPRI = 0x0002;
export const POLLOUT = 0x0004;
export const POLLERR = 0x0008;
export const POLLHUP = 0x0010;
export const POLLNVAL = 0x0020;

// TCP_INFO tcpi_options (netinet/tcp.h)
export const TCPI_OPT_TIMESTAMPS = 0x01;
export const TCPI_OPT_SACK = 0x02;
export const TCPI_OPT_WSCALE = 0x04;
export const TCPI_OPT_ECN = 0x08;
export const TCPI_OPT_TOE = 0x10;
export const TCPI_OPT_TFO = 0x20;

/** TCP_INFO (struct tcp_info, the fields FreeBSD fills). Times in microseconds as FreeBSD reports them. */
export interface TcpInfo {
  /** TCPS_* (FreeBSD numbering: CLOSED 0, LISTEN 1, SYN_SENT 2, SYN_RECEIVED 3, ESTABLISHED 4, CLOSE_WAIT 5, FIN_WAIT_1 6, CLOSING 7, LAST_ACK 8, FIN_WAIT_2 9, TIME_WAIT 10). */
  tcpi_state: number;
  tcpi_options: number;
  tcpi_snd_wscale: number;
  tcpi_rcv_wscale: number;
  /** Retransmission timeout, µs. */
  tcpi_rto: number;
  tcpi_snd_mss: number;
  tcpi_rcv_mss: number;
  /** Smoothed RTT and its variance, µs. */
  tcpi_rtt: number;
  tcpi_rttvar: number;
  tcpi_snd_ssthresh: number;
  tcpi_snd_cwnd: number;
  tcpi_rcv_space: number;
  tcpi_snd_wnd: number;
  tcpi_snd_bwnd: number;
  tcpi_snd_nxt: number;
  tcpi_rcv_nxt: number;
  tcpi_snd_rexmitpack: number;
  tcpi_rcv_ooopack: number;
  tcpi_snd_zerowin: number;
  /** ms since the last data received / sent / ack received. */
  tcpi_last_data_recv: number;
  tcpi_last_ack_recv: number;
  tcpi_last_data_sent: number;
  tcpi_rcv_numsacks: number;
  tcpi_backoff: number;
  tcpi_snd_una: number;
  tcpi_snd_max: number;
}

/** One line of `netstat -an` / sockstat (list()). */
export interface TcpConnInfo {
  id: number;
  laddr: number;
  lport: number;
  faddr: number;
  fport: number;
  state: number;
  /** Bytes queued to receive / to send. */
  recvQ: number;
  sendQ: number;
}
