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
 *                                            (port 0: an ephemeral port of net.inet.ip.portrange.*;
 *                                            -EADDRNOTAVAIL when the range is used up)
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
 *   so.writeExt(id, addr, len, piece, freeId, arg1, arg2, onPiece): number
 *                                            as write(), for arena memory taken by reference (zero-copy
 *                                            send: read-only external storage, ext free routine freeId)
 *   so.writeChain(id, m, len): number        as write(), for a ready chain (sendfile); consumes m
 *   so.sendSpace(id): number                 room in so_snd now | -errno (what writeChain may add)
 *   so.shutdown(id, how: SHUT_RD|SHUT_WR|SHUT_RDWR): number  0 | -ENOTCONN | -EINVAL
 *   so.close(id): number                     0 | -EBADF. Graceful (FIN) unless SO_LINGER {on, 0}
 *                                            (RST); unread data is discarded (as FreeBSD); the id is
 *                                            free at once, the connection finishes in the stack.
 *   so.setsockopt(id, level, name, value: number, value2 = 0): number      0 | -errno
 *                                            SO_LINGER: value = l_onoff, value2 = l_linger (seconds)
 *   so.getsockopt(id, level, name, out: Int32Array): number                0 | -errno; value in out[0]
 *                                            (SO_LINGER: out[0] = l_onoff, out[1] = l_linger)
 *       SOL_SOCKET: SO_RCVBUF, SO_SNDBUF (FreeBSD rounding, kern.ipc.maxsockbuf: -ENOBUFS), SO_ERROR
 *                   (read clears it), SO_LINGER, SO_KEEPALIVE, SO_REUSEADDR, SO_REUSEPORT,
 *                   SO_REUSEPORT_LB (listeners of a port share its SYNs by flow hash),
 *                   SO_ACCEPTCONN (get), SO_TYPE (get: SOCK_STREAM = 1)
 *       IPPROTO_IP: IP_TTL, IP_TOS, IP_PORTRANGE (IP_PORTRANGE_DEFAULT / HIGH / LOW)
 *       IPPROTO_TCP: TCP_NODELAY, TCP_MAXSEG, TCP_NOOPT, TCP_NOPUSH, TCP_KEEPINIT, TCP_KEEPIDLE,
 *                    TCP_KEEPINTVL (seconds), TCP_KEEPCNT, TCP_REMOTE_UDP_ENCAPS_PORT (TCP over UDP
 *                    to that peer port, before connect, with net.inet.tcp.udp_tunneling_port set)
 *   so.setsockoptString(id, level, name, value: string): number      0 | -errno
 *   so.getsockoptString(id, level, name): string | number            the value | -errno
 *       IPPROTO_TCP: TCP_CONGESTION (the algorithm's name, "newreno" / "cubic"; an unknown name is
 *                    -ESRCH as FreeBSD's; the connection continues from its cwnd and ssthresh)
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
import { EAGAIN, EALREADY_, EBADF, EINVAL, EISCONN, ENOBUFS, ENOPROTOOPT, ENOTCONN, EOPNOTSUPP, EPIPE, ESRCH_, EINPROGRESS, ECONNABORTED_ } from './tcp_errno.js';
import type { Stack } from './stack.js';
import { ccSwitch } from './cc/cc_list.js';
import type { TcpTable } from './tcp_subr.js';
import {
  F_GETFL,
  F_SETFL,
  IPPROTO_IP,
  IPPROTO_TCP,
  IP_TOS,
  IP_TTL,
  IP_PORTRANGE,
  MSG_PEEK,
  MSG_WAITALL,
  O_NONBLOCK,
  O_RDWR,
  POLLERR,
  POLLHUP,
  POLLIN,
  POLLNVAL,
  POLLOUT,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SOL_SOCKET,
  SO_ACCEPTCONN,
  SO_ERROR,
  SO_KEEPALIVE,
  SO_LINGER,
  SO_RCVBUF,
  SO_REUSEADDR,
  SO_REUSEPORT,
  SO_REUSEPORT_LB,
  SO_SNDBUF,
  SO_TYPE,
  TCPI_OPT_ECN,
  TCPI_OPT_SACK,
  TCPI_OPT_TIMESTAMPS,
  TCPI_OPT_WSCALE,
  TCP_KEEPCNT,
  TCP_CONGESTION,
  TCP_KEEPIDLE,
  TCP_KEEPINIT,
  TCP_KEEPINTVL,
  TCP_MAXSEG,
  TCP_NODELAY,
  TCP_NOOPT,
  TCP_NOPUSH,
  TCP_REMOTE_UDP_ENCAPS_PORT,
  type TcpConnInfo,
  type TcpInfo,
} from './tcp_api.js';
import {
  SO_ACCEPTCONN_OPT,
  SO_KEEPALIVE_OPT,
  SO_LINGER_OPT,
  SO_REUSEADDR_OPT,
  SO_REUSEPORT_OPT,
  SO_REUSEPORT_LB_OPT,
  SS_ISCONNECTING,
  SS_NBIO,
  TCP_RTTVAR_SHIFT,
  TCP_RTT_SHIFT,
  TF_ECN_PERMIT,
  TF_DELACK,
  TF_ACKNOW,
  TF_NEEDFIN,
  TF_NODELAY,
  TF_NOOPT,
  TF_NOPUSH,
  TF_RCVD_SCALE,
  TF_RCVD_TSTMP,
  TF_REQ_SCALE,
  TF_REQ_TSTMP,
  TF_SACK_PERMIT,
  Tcpcb,
} from './tcp_var.js';
import { SBS_CANTRCVMORE, SBS_CANTSENDMORE, SBS_RCVDFIN, sbMaxAdj } from './tcp_sockbuf.js';
import {
  TCPS_CLOSED,
  TCPS_CLOSE_WAIT,
  TCPS_ESTABLISHED,
  TCPS_FIN_WAIT_2,
  TCPS_HAVEESTABLISHED,
  TCPS_LISTEN,
  TCPS_SYN_RECEIVED,
  TCPS_SYN_SENT,
  TCPS_FIN_WAIT_1,
  TCPS_LAST_ACK,
  TCPS_TIME_WAIT,
} from './tcp_fsm.js';
import { TCPS_STAT } from './tcp_stats.js';
import { inpPortrange, inpSetPortrange } from './in_pcb.js';
import { tcpMaxidle, tcpTimer2mslArm, tcpTimerKeepArm } from './tcp_timer.js';


/** The user API of one stack's TCP (see the block comment above). */
/** read()'s buffer for readChain's empty cases (EOF, errors, EAGAIN): one byte, never written. */
const EMPTY_READ = new Uint8Array(1);

export class TcpSockets {
  private readonly ids = new Map<number, Tcpcb>();
  private nextId = 1;
  /** Called when an id's poll() bits may have changed (on the stack's thread). */
  onwakeup: ((id: number) => void) | null = null;
  readonly tcp: TcpTable;

  constructor(readonly st: Stack) {
    this.tcp = st.tcp;
    if (this.tcp.sockets === null) this.tcp.sockets = this;
  }

  private get(id: number): Tcpcb | null {
    return this.ids.get(id) ?? null;
  }

  /** socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) */
  /** socket(AF_INET, SOCK_STREAM): a CLOSED control block under a new id. No lock; never sleeps. */
  socket(): number {
    if (this.tcp.closed) return -ENOBUFS;
    const tp = this.tcp.newtcpcb();
    const id = this.nextId++;
    tp.sockId = id;
    this.ids.set(id, tp);
    return id;
  }

  /** bind: in_pcbbind (port 0 picks an ephemeral one; SO_REUSEADDR / SO_REUSEPORT as FreeBSD). */
  bind(id: number, addr: number, port: number): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    if (!Number.isInteger(port) || port < 0 || port > 65535 || !Number.isInteger(addr)) return -EINVAL;
    const e = this.tcp.bind(tp, addr >>> 0, port);
    return e === 0 ? 0 : -e;
  }

  /** listen: LISTEN with an accept queue of min(backlog, kern.ipc.soacceptqueue) (binds an ephemeral port when unbound). */
  listen(id: number, backlog: number): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    if (tp.state !== TCPS_CLOSED && tp.state !== TCPS_LISTEN) return -EINVAL;
    if (tp.lport === 0) {
      const e = this.tcp.bind(tp, 0, 0);
      if (e !== 0) return -e;
    }
    const max = this.tcp.cfg.soacceptqueue;
    if (!Number.isInteger(backlog) || backlog < 0 || backlog > max) backlog = max;
    tp.state = TCPS_LISTEN;
    tp.so_options |= SO_ACCEPTCONN_OPT;
    if (tp.so_comp === null) tp.so_comp = [];
    tp.so_qlimit = Math.max(backlog, 1);
    this.tcp.listenLb(tp);
    return 0;
  }

  /** accept: the oldest completed connection under a new id, or -EAGAIN. */
  accept(id: number): number {
    const lp = this.get(id);
    if (lp === null) return -EBADF;
    if (lp.state !== TCPS_LISTEN || lp.so_comp === null) return -EINVAL;
    const tp = lp.so_comp.shift();
    if (tp === undefined) return -EAGAIN;
    tp.so_head = null;
    const nid = this.nextId++;
    tp.sockId = nid;
    this.ids.set(nid, tp);
    return nid;
  }

  /** connect: route, ephemeral port, ISN (RFC 6528), SYN out; always -EINPROGRESS (poll for POLLOUT / POLLERR). */
  connect(id: number, addr: number, port: number): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    const tcp = this.tcp;
    if (tp.state === TCPS_LISTEN) return -EOPNOTSUPP;
    if ((tp.so_state & SS_ISCONNECTING) !== 0 && tp.state === TCPS_SYN_SENT) return -EALREADY_;
    if (tp.state !== TCPS_CLOSED || tp.faddr !== 0) return -EISCONN;
    if (!Number.isInteger(port) || port <= 0 || port > 65535 || !Number.isInteger(addr)) return -EINVAL;
    const e = tcp.pcbconnect(tp, addr >>> 0, port);
    if (e !== 0) return -e;
    if ((tp.t_flags & TF_NOOPT) !== 0) tp.t_flags &= ~(TF_REQ_SCALE | TF_REQ_TSTMP | TF_SACK_PERMIT);
    if ((tp.t_flags & TF_REQ_SCALE) !== 0) tp.request_r_scale = tcp.requestScale();
    tp.ts_offset = tcp.tsOffset(tp.laddr, tp.lport, tp.faddr, tp.fport);
    tp.iss = tcp.newIsn(tp);
    tp.snd_una = tp.snd_nxt = tp.snd_max = tp.snd_up = tp.snd_recover = tp.iss;
    tp.state = TCPS_SYN_SENT;
    tp.so_state |= SS_ISCONNECTING;
    tcp.stats[TCPS_STAT.connattempt]++;
    tcpTimerKeepArm(tp, tp.keepinit());
    tcp.output(tp);
    return -EINPROGRESS;
  }

  /**
   * What a read would find now: so_rcv's byte count, and in `align` the
   * first byte's arena address modulo 8 (see Sockbuf.headAlign), so the
   * reader can size and align the Buffer it reads into. -EBADF for no socket.
   */
  rcvPending(id: number, align: Int32Array): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    align[0] = tp.so_rcv.headAlign();
    return tp.so_rcv.cc;
  }

  /** soreceive: copy from so_rcv (MSG_PEEK leaves it, MSG_WAITALL waits for a full buffer), then tell the peer about the opened window. */
  read(id: number, buf: Uint8Array, flags = 0): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    if (tp.state === TCPS_LISTEN) return -ENOTCONN;
    const sb = tp.so_rcv;
    if (sb.cc === 0 && tp.so_error !== 0) {
      const e = tp.so_error;
      tp.so_error = 0;
      return -e;
    }
    if (sb.cc === 0) {
      if ((sb.state & (SBS_RCVDFIN | SBS_CANTRCVMORE)) !== 0) return 0;
      if (tp.state === TCPS_CLOSED) return tp.iss === 0 && tp.snd_max === 0 ? -ENOTCONN : 0;
      return buf.length === 0 ? 0 : -EAGAIN;
    }
    let n = Math.min(buf.length, sb.cc);
    if ((flags & MSG_WAITALL) !== 0 && n < buf.length && (sb.state & SBS_RCVDFIN) === 0 && tp.state !== TCPS_CLOSED) return -EAGAIN;
    sb.copyOut(0, n, buf, 0);
    if ((flags & MSG_PEEK) === 0) {
      const adv = (tp.rcv_adv - tp.rcv_nxt) | 0;
      sb.drop(n);
      this.rcvd(tp, adv);
    }
    n = n | 0;
    return n;
  }

  /**
   * soreceive by handle (lib/tcpcpu.ts TCP_READ for a reader on another
   * thread): up to `max` bytes of so_rcv leave as a chain (Sockbuf.take:
   * whole mbufs move, no copy), stored in out[0] (0 when none). Same
   * returns as read(); -ENOBUFS when the cut found no mbuf (nothing taken).
   */
  readChain(id: number, max: number, out: Int32Array): number {
    out[0] = 0;
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    const sb = tp.so_rcv;
    if (sb.cc === 0 || tp.state === TCPS_LISTEN) return this.read(id, EMPTY_READ.subarray(0, max > 0 ? 1 : 0));
    const n = Math.min(max, sb.cc);
    const adv = (tp.rcv_adv - tp.rcv_nxt) | 0;
    const m = sb.take(n);
    if (m === 0) return -ENOBUFS;
    out[0] = m;
    this.rcvd(tp, adv);
    return n;
  }

  /**
   * After a read took bytes off so_rcv (`adv`: the window advertised before
   * it): tcp_usr_rcvd, the window may have opened enough to tell the peer.
   * The advertised window was nearly closed and the read opens half the
   * buffer: the pending delayed ACK carries the update now rather than after
   * delacktime (the sender sits on a silly window otherwise; FreeBSD hides
   * this with receive-buffer autosizing).
   */
  private rcvd(tp: Tcpcb, adv: number): void {
    const sb = tp.so_rcv;
    if ((tp.t_flags & TF_DELACK) !== 0 && adv < tp.t_maxseg && sb.space() - adv >= sb.hiwat / 2) tp.t_flags |= TF_ACKNOW;
    if (TCPS_HAVEESTABLISHED(tp.state) && tp.state !== TCPS_TIME_WAIT) this.tcp.output(tp);
  }

  /** sosend: copy into so_snd as room allows (a partial count when it fills), then tcp_output. */
  write(id: number, buf: Uint8Array, flags = 0): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    const e = this.sendCheck(tp);
    if (e !== 0) return e;
    if (buf.length === 0) return 0;
    const sb = tp.so_snd;
    const room = sb.hiwat - sb.cc;
    if (room <= 0) return -EAGAIN;
    const n = sb.appendBytes(buf, 0, Math.min(room, buf.length));
    if (n === 0) return -ENOBUFS;
    this.tcp.output(tp);
    return n;
  }

  /**
   * sosend of arena memory by reference (zero-copy send, lib/zcopy.ts): so_snd
   * takes up to its room of [addr, addr+len) as read-only external storage
   * (Sockbuf.appendExt, pieces of at most `piece` bytes, ext free routine
   * `freeId` with arg1/arg2 when each is freed), then tcp_output. Same
   * returns as write(). Never sleeps.
   */
  writeExt(id: number, addr: number, len: number, piece: number, freeId: number, arg1: number, arg2: number, onPiece: () => void): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    const e = this.sendCheck(tp);
    if (e !== 0) return e;
    if (len === 0) return 0;
    const sb = tp.so_snd;
    const room = sb.hiwat - sb.cc;
    if (room <= 0) return -EAGAIN;
    const n = sb.appendExt(addr, Math.min(room, len), piece, freeId, arg1, arg2, onPiece);
    if (n === 0) return -ENOBUFS;
    this.tcp.output(tp);
    return n;
  }

  /**
   * pru_send of a ready chain (sendfile: headers and file pages in one
   * chain, so they share the first segment): so_snd takes all of m (`len`
   * bytes) whatever its room (the caller sized it with sendSpace()), then
   * tcp_output. m is consumed in every case. n | -errno as write().
   */
  writeChain(id: number, m: number, len: number): number {
    const tp = this.get(id);
    const e = tp === null ? -EBADF : this.sendCheck(tp);
    if (e !== 0 || len === 0) {
      this.st.mb.m_freem(m);
      return e;
    }
    tp!.so_snd.appendChain(m, len);
    this.tcp.output(tp!);
    return len;
  }

  /** sbspace(so_snd) for a sender that builds its own chains (sendfile): bytes it may append now, or -errno. */
  sendSpace(id: number): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    const e = this.sendCheck(tp);
    if (e !== 0) return e;
    return Math.max(0, tp.so_snd.hiwat - tp.so_snd.cc);
  }

  /** The state checks of sosend: 0 when data may be queued, else -errno (so_error is reported once). */
  private sendCheck(tp: Tcpcb): number {
    if ((tp.so_snd.state & SBS_CANTSENDMORE) !== 0) return -EPIPE;
    if (tp.so_error !== 0) {
      const e = tp.so_error;
      tp.so_error = 0;
      return -e;
    }
    if (tp.state === TCPS_CLOSED) return tp.snd_max === 0 && tp.iss === 0 ? -ENOTCONN : -EPIPE;
    if (!TCPS_HAVEESTABLISHED(tp.state)) return -ENOTCONN;
    if (tp.state > TCPS_CLOSE_WAIT) return -EPIPE;
    return 0;
  }

  /** shutdown: SHUT_RD discards and refuses input, SHUT_WR sends the FIN (tcp_usrclosed). */
  shutdown(id: number, how: number): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    if (how !== SHUT_RD && how !== SHUT_WR && how !== SHUT_RDWR) return -EINVAL;
    if (tp.state === TCPS_CLOSED || tp.state === TCPS_LISTEN) {
      if (tp.state === TCPS_LISTEN && how !== SHUT_WR) return 0;
      return -ENOTCONN;
    }
    if (how !== SHUT_WR) {
      tp.so_rcv.state |= SBS_CANTRCVMORE;
      tp.so_rcv.flush();
    }
    if (how !== SHUT_RD) {
      tp.so_snd.state |= SBS_CANTSENDMORE;
      this.usrclosed(tp);
      if (tp.state !== TCPS_CLOSED) this.tcp.output(tp);
    }
    return 0;
  }

  /** tcp_usrclosed: the user will send no more: the FIN states. */
  private usrclosed(tp: Tcpcb): void {
    switch (tp.state) {
      case TCPS_CLOSED:
      case TCPS_LISTEN:
      case TCPS_SYN_SENT:
        this.tcp.close(tp);
        return;
      case TCPS_SYN_RECEIVED:
        tp.t_flags |= TF_NEEDFIN;
        return;
      case TCPS_ESTABLISHED:
        tp.state = TCPS_FIN_WAIT_1;
        return;
      case TCPS_CLOSE_WAIT:
        tp.state = TCPS_LAST_ACK;
        return;
      default:
        break;
    }
    if (tp.state === TCPS_FIN_WAIT_2 && (tp.so_rcv.state & SBS_CANTRCVMORE) !== 0) {
      const cfg = this.tcp.cfg;
      tcpTimer2mslArm(tp, cfg.fast_finwait2_recycle ? cfg.finwait2_timeout : tcpMaxidle(tp));
    }
  }

  /**
   * soclose + tcp_disconnect: the id goes at once; unread data is discarded; an open connection
   * sends its FIN and finishes in the stack (SO_LINGER {1, 0}: a RST instead); a listener drops
   * its queue; a connection not yet established just ends.
   */
  close(id: number): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    this.ids.delete(id);
    tp.sockId = 0;
    const tcp = this.tcp;
    if (tp.state === TCPS_CLOSED || tp.state === TCPS_LISTEN || tp.state === TCPS_SYN_SENT) {
      tp.so_rcv.flush();
      tcp.close(tp);
      return 0;
    }
    if (tp.state === TCPS_TIME_WAIT) {
      tp.so_rcv.flush();
      return 0;
    }
    if ((tp.so_options & SO_LINGER_OPT) !== 0 && tp.so_linger === 0) {
      tp.so_rcv.flush();
      tcp.drop(tp, 0);
      return 0;
    }
    tp.so_rcv.flush();
    tp.so_rcv.state |= SBS_CANTRCVMORE;
    if ((tp.so_snd.state & SBS_CANTSENDMORE) === 0) {
      tp.so_snd.state |= SBS_CANTSENDMORE;
      this.usrclosed(tp);
    } else if (tp.state === TCPS_FIN_WAIT_2) {
      const cfg = tcp.cfg;
      tcpTimer2mslArm(tp, cfg.fast_finwait2_recycle ? cfg.finwait2_timeout : tcpMaxidle(tp));
    }
    if (tp.state !== TCPS_CLOSED) tcp.output(tp);
    return 0;
  }

  /** setsockopt (sosetopt / tcp_ctloutput / ip_ctloutput for the options listed above). */
  setsockopt(id: number, level: number, name: number, value: number, value2 = 0): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    if (!Number.isInteger(value)) return -EINVAL;
    const cfg = this.tcp.cfg;
    const flag = (bit: number) => {
      if (value !== 0) tp.so_options |= bit;
      else tp.so_options &= ~bit;
      return 0;
    };
    const tflag = (bit: number) => {
      if (value !== 0) tp.t_flags |= bit;
      else tp.t_flags &= ~bit;
      return 0;
    };
    if (level === SOL_SOCKET) {
      switch (name) {
        case SO_RCVBUF:
        case SO_SNDBUF: {
          // sbreserve: bounded by sb_max scaled for mbuf overhead (sb_max_adj).
          if (value <= 0) return -EINVAL;
          if (value > sbMaxAdj(cfg.maxsockbuf)) return -ENOBUFS;
          const sb = name === SO_RCVBUF ? tp.so_rcv : tp.so_snd;
          sb.hiwat = value;
          sb.autosize = false; // the user's size is kept: no SB_AUTOSIZE
          return 0;
        }
        case SO_KEEPALIVE:
          flag(SO_KEEPALIVE_OPT);
          if (value !== 0 && TCPS_HAVEESTABLISHED(tp.state) && tp.state < TCPS_TIME_WAIT) tcpTimerKeepArm(tp, tp.keepidle());
          return 0;
        case SO_REUSEADDR:
          return flag(SO_REUSEADDR_OPT);
        case SO_REUSEPORT:
          return flag(SO_REUSEPORT_OPT);
        case SO_REUSEPORT_LB:
          return flag(SO_REUSEPORT_LB_OPT);
        case SO_LINGER:
          if (value2 < 0) return -EINVAL;
          tp.so_linger = value2;
          return flag(SO_LINGER_OPT);
        default:
          return -ENOPROTOOPT;
      }
    }
    if (level === IPPROTO_IP) {
      if (name === IP_TTL) {
        if (value < -1 || value > 255) return -EINVAL;
        tp.ttl = value === -1 ? this.st.cfg.ttl : value;
        return 0;
      }
      if (name === IP_TOS) {
        if (value < 0 || value > 255) return -EINVAL;
        tp.tos = value & 0xfc;
        return 0;
      }
      if (name === IP_PORTRANGE) {
        const e = inpSetPortrange(tp, value);
        return e === 0 ? 0 : -e;
      }
      return -ENOPROTOOPT;
    }
    if (level === IPPROTO_TCP) {
      switch (name) {
        case TCP_NODELAY:
          tflag(TF_NODELAY);
          if (value !== 0 && TCPS_HAVEESTABLISHED(tp.state)) this.tcp.output(tp);
          return 0;
        case TCP_NOPUSH:
          tflag(TF_NOPUSH);
          if (value === 0 && TCPS_HAVEESTABLISHED(tp.state)) this.tcp.output(tp);
          return 0;
        case TCP_NOOPT:
          return tflag(TF_NOOPT);
        case TCP_MAXSEG:
          if (value <= 0 || value > 65535) return -EINVAL;
          tp.t_usermss = value;
          if (value < tp.t_maxseg && value >= 64) tp.t_maxseg = value;
          return 0;
        case TCP_KEEPINIT:
        case TCP_KEEPIDLE:
        case TCP_KEEPINTVL: {
          if (value <= 0 || value > 0x7fffffff / 1000) return -EINVAL;
          const ms = value * 1000;
          if (name === TCP_KEEPINIT) tp.t_keepinit = ms;
          else if (name === TCP_KEEPIDLE) {
            tp.t_keepidle = ms;
            if (TCPS_HAVEESTABLISHED(tp.state) && tp.state < TCPS_TIME_WAIT && tp.tt_keep !== 0) tcpTimerKeepArm(tp, ms);
          } else tp.t_keepintvl = ms;
          return 0;
        }
        case TCP_KEEPCNT:
          if (value <= 0) return -EINVAL;
          tp.t_keepcnt = value;
          return 0;
        case TCP_REMOTE_UDP_ENCAPS_PORT:
          // Only before the connection exists, and only with a tunneling port configured.
          if (tp.state !== TCPS_CLOSED || cfg.udp_tunneling_port === 0 || value < 0 || value > 65535) return -EINVAL;
          tp.t_port = value;
          return 0;
        default:
          return -ENOPROTOOPT;
      }
    }
    return -ENOPROTOOPT;
  }

  /**
   * setsockopt of a string option: IPPROTO_TCP TCP_CONGESTION moves the
   * connection to the named algorithm (tcp_congestion). 0 | -EBADF |
   * -ESRCH (no such algorithm) | -ENOPROTOOPT.
   */
  setsockoptString(id: number, level: number, name: number, value: string): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    if (level !== IPPROTO_TCP || name !== TCP_CONGESTION) return -ENOPROTOOPT;
    if (typeof value !== 'string') return -EINVAL;
    return ccSwitch(tp, value);
  }

  /** getsockopt of a string option (TCP_CONGESTION): the value, or -EBADF / -ENOPROTOOPT. */
  getsockoptString(id: number, level: number, name: number): string | number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    if (level !== IPPROTO_TCP || name !== TCP_CONGESTION) return -ENOPROTOOPT;
    return tp.cc_algo.name;
  }

  /** getsockopt: the value in out[0] (SO_LINGER: out[0..1]); reading SO_ERROR clears it. */
  getsockopt(id: number, level: number, name: number, out: Int32Array): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    if (out.length < 1) return -EINVAL;
    const bit = (b: number) => ((tp.so_options & b) !== 0 ? 1 : 0);
    if (level === SOL_SOCKET) {
      switch (name) {
        case SO_RCVBUF:
          out[0] = tp.so_rcv.hiwat;
          return 0;
        case SO_SNDBUF:
          out[0] = tp.so_snd.hiwat;
          return 0;
        case SO_ERROR:
          out[0] = tp.so_error;
          tp.so_error = 0;
          return 0;
        case SO_KEEPALIVE:
          out[0] = bit(SO_KEEPALIVE_OPT);
          return 0;
        case SO_REUSEADDR:
          out[0] = bit(SO_REUSEADDR_OPT);
          return 0;
        case SO_REUSEPORT:
          out[0] = bit(SO_REUSEPORT_OPT);
          return 0;
        case SO_REUSEPORT_LB:
          out[0] = bit(SO_REUSEPORT_LB_OPT);
          return 0;
        case SO_ACCEPTCONN:
          out[0] = tp.state === TCPS_LISTEN ? 1 : 0;
          return 0;
        case SO_TYPE:
          out[0] = 1;
          return 0;
        case SO_LINGER:
          if (out.length < 2) return -EINVAL;
          out[0] = bit(SO_LINGER_OPT);
          out[1] = tp.so_linger;
          return 0;
        default:
          return -ENOPROTOOPT;
      }
    }
    if (level === IPPROTO_IP) {
      if (name === IP_TTL) out[0] = tp.ttl;
      else if (name === IP_TOS) out[0] = tp.tos;
      else if (name === IP_PORTRANGE) out[0] = inpPortrange(tp);
      else return -ENOPROTOOPT;
      return 0;
    }
    if (level === IPPROTO_TCP) {
      switch (name) {
        case TCP_NODELAY:
          out[0] = (tp.t_flags & TF_NODELAY) !== 0 ? 1 : 0;
          return 0;
        case TCP_NOPUSH:
          out[0] = (tp.t_flags & TF_NOPUSH) !== 0 ? 1 : 0;
          return 0;
        case TCP_NOOPT:
          out[0] = (tp.t_flags & TF_NOOPT) !== 0 ? 1 : 0;
          return 0;
        case TCP_MAXSEG:
          out[0] = tp.t_maxseg;
          return 0;
        case TCP_KEEPINIT:
          out[0] = Math.floor(tp.keepinit() / 1000);
          return 0;
        case TCP_KEEPIDLE:
          out[0] = Math.floor(tp.keepidle() / 1000);
          return 0;
        case TCP_KEEPINTVL:
          out[0] = Math.floor(tp.keepintvl() / 1000);
          return 0;
        case TCP_KEEPCNT:
          out[0] = tp.keepcnt();
          return 0;
        case TCP_REMOTE_UDP_ENCAPS_PORT:
          out[0] = tp.t_port;
          return 0;
        default:
          return -ENOPROTOOPT;
      }
    }
    return -ENOPROTOOPT;
  }

  /** TCP_INFO (tcp_fill_info): FreeBSD's fields and units (µs for RTT/RTO). */
  info(id: number): TcpInfo | null {
    const tp = this.get(id);
    if (tp === null) return null;
    const now = this.tcp.ticks();
    let o = 0;
    if ((tp.t_flags & (TF_REQ_TSTMP | TF_RCVD_TSTMP)) === (TF_REQ_TSTMP | TF_RCVD_TSTMP)) o |= TCPI_OPT_TIMESTAMPS;
    if ((tp.t_flags & TF_SACK_PERMIT) !== 0) o |= TCPI_OPT_SACK;
    const ws = (tp.t_flags & (TF_REQ_SCALE | TF_RCVD_SCALE)) === (TF_REQ_SCALE | TF_RCVD_SCALE);
    if (ws) o |= TCPI_OPT_WSCALE;
    if ((tp.t_flags & TF_ECN_PERMIT) !== 0) o |= TCPI_OPT_ECN;
    return {
      tcpi_state: tp.state,
      tcpi_options: o,
      tcpi_snd_wscale: ws ? tp.snd_scale : 0,
      tcpi_rcv_wscale: ws ? tp.rcv_scale : 0,
      tcpi_rto: tp.t_rxtcur * 1000,
      tcpi_snd_mss: tp.t_maxseg,
      tcpi_rcv_mss: tp.t_maxseg,
      tcpi_rtt: Math.floor((tp.t_srtt * 1000) / (1 << TCP_RTT_SHIFT)),
      tcpi_rttvar: Math.floor((tp.t_rttvar * 1000) / (1 << TCP_RTTVAR_SHIFT)),
      tcpi_snd_ssthresh: tp.snd_ssthresh,
      tcpi_snd_cwnd: tp.snd_cwnd,
      tcpi_rcv_space: tp.rcv_wnd,
      tcpi_snd_wnd: tp.snd_wnd,
      tcpi_snd_bwnd: 0,
      tcpi_snd_nxt: (tp.snd_nxt - tp.iss) >>> 0,
      tcpi_rcv_nxt: (tp.rcv_nxt - tp.irs) >>> 0,
      tcpi_snd_rexmitpack: tp.t_sndrexmitpack,
      tcpi_rcv_ooopack: tp.t_rcvoopack,
      tcpi_snd_zerowin: tp.t_sndzerowin,
      tcpi_last_data_recv: tp.t_lastdatarecv === 0 ? 0 : now - tp.t_lastdatarecv,
      tcpi_last_ack_recv: tp.t_lastackrecv === 0 ? 0 : now - tp.t_lastackrecv,
      tcpi_last_data_sent: tp.t_lastdatasent === 0 ? 0 : now - tp.t_lastdatasent,
      tcpi_rcv_numsacks: tp.rcv_numsacks,
      tcpi_backoff: tp.t_rxtshift,
      tcpi_snd_una: tp.snd_una,
      tcpi_snd_max: tp.snd_max,
    };
  }

  /** fcntl F_GETFL / F_SETFL: O_RDWR, and O_NONBLOCK as set (every call here returns at once anyway). */
  fcntl(id: number, cmd: number, arg = 0): number {
    const tp = this.get(id);
    if (tp === null) return -EBADF;
    if (cmd === F_GETFL) return O_RDWR | ((tp.so_state & SS_NBIO) !== 0 ? O_NONBLOCK : 0);
    if (cmd === F_SETFL) {
      if ((arg & O_NONBLOCK) !== 0) tp.so_state |= SS_NBIO;
      else tp.so_state &= ~SS_NBIO;
      return 0;
    }
    return -EINVAL;
  }

  /** getsockname */
  sockname(id: number): { addr: number; port: number } | null {
    const tp = this.get(id);
    return tp === null ? null : { addr: tp.laddr, port: tp.lport };
  }

  /** getpeername (null when not connected). */
  peername(id: number): { addr: number; port: number } | null {
    const tp = this.get(id);
    if (tp === null || tp.faddr === 0) return null;
    return { addr: tp.faddr, port: tp.fport };
  }

  /** poll: POLLIN / POLLOUT / POLLERR / POLLHUP as the socket stands now (POLLNVAL for a bad id). */
  poll(id: number): number {
    const tp = this.get(id);
    if (tp === null) return POLLNVAL;
    let r = 0;
    if (tp.state === TCPS_LISTEN) return tp.so_comp !== null && tp.so_comp.length > 0 ? POLLIN : 0;
    const rcv = tp.so_rcv;
    if (rcv.cc > 0 || (rcv.state & (SBS_RCVDFIN | SBS_CANTRCVMORE)) !== 0) r |= POLLIN;
    if (tp.so_error !== 0) r |= POLLERR;
    const connected = TCPS_HAVEESTABLISHED(tp.state) && tp.state !== TCPS_CLOSED;
    if (connected && tp.state <= TCPS_CLOSE_WAIT && (tp.so_snd.state & SBS_CANTSENDMORE) === 0 && tp.so_snd.hiwat - tp.so_snd.cc > 0) r |= POLLOUT;
    const everConnected = tp.snd_max !== 0 || tp.iss !== 0;
    if (tp.state === TCPS_CLOSED && everConnected) r |= POLLHUP | POLLIN;
    else if ((rcv.state & SBS_RCVDFIN) !== 0 && (tp.so_snd.state & SBS_CANTSENDMORE) !== 0) r |= POLLHUP;
    return r;
  }

  /** Every PCB and syncache entry (netstat -an, sockstat): id 0 for what no socket holds. */
  list(): TcpConnInfo[] {
    const out: TcpConnInfo[] = [];
    for (const tp of this.tcp.all) out.push({ id: tp.sockId, laddr: tp.laddr, lport: tp.lport, faddr: tp.faddr, fport: tp.fport, state: tp.state, recvQ: tp.so_rcv.cc, sendQ: tp.so_snd.cc });
    for (const e of this.tcp.syncache.listEntries()) out.push({ id: 0, ...e, state: TCPS_SYN_RECEIVED, recvQ: 0, sendQ: 0 });
    return out;
  }

  /** tcpdrop: reset the connection of a 4-tuple (a TIME_WAIT one just ends). */
  drop(laddr: number, lport: number, faddr: number, fport: number): number {
    const tp = this.tcp.lookupConn(laddr >>> 0, lport, faddr >>> 0, fport);
    if (tp === null) return -ESRCH_;
    if (tp.state === TCPS_TIME_WAIT) this.tcp.close(tp);
    else this.tcp.drop(tp, ECONNABORTED_);
    return 0;
  }

  /** The stack told us an id's readiness may have changed. */
  wakeup(id: number): void {
    if (this.onwakeup !== null) this.onwakeup(id);
  }

  /** Stack.close(): every id is gone (the table already freed the PCBs). */
  flush(): void {
    for (const tp of this.ids.values()) {
      tp.so_rcv.flush();
      tp.so_snd.flush();
    }
    this.ids.clear();
  }
}

