/**
 * The TCP control block (struct tcpcb, tcp_var.h) with the parts of its
 * inpcb (addresses, ports, TTL, TOS) and socket (buffers, options, state,
 * so_error, accept queue) this single-thread stack needs, and the flag bits.
 *
 * One Tcpcb per connection, listener or TIME_WAIT endpoint; created and
 * touched only on its stack's thread (the MP design gives each CPU its own
 * table), so nothing here takes a lock. Sequence numbers are unsigned
 * 32-bit values compared with tcp_seq.ts.
 */
import { Callout, type CalloutWheel } from '../kern/lwkt/callout.js';
import { Sockbuf } from './tcp_sockbuf.js';
import { TCPS_CLOSED } from './tcp_fsm.js';
import type { TcpTable } from './tcp_subr.js';
import { SACKHINT_NONE, type SackHint } from './tcp_sack.js';
import type { RackState } from './tcp_rack.js';
import { InPcb } from './in_pcb.js';
import { CcVar, type CcAlgo } from './cc/cc.js';

// t_flags
export const TF_ACKNOW = 0x00000001;
export const TF_DELACK = 0x00000002;
export const TF_NODELAY = 0x00000004;
export const TF_NOOPT = 0x00000008;
export const TF_SENTFIN = 0x00000010;
export const TF_REQ_SCALE = 0x00000020;
export const TF_RCVD_SCALE = 0x00000040;
export const TF_REQ_TSTMP = 0x00000080;
export const TF_RCVD_TSTMP = 0x00000100;
export const TF_SACK_PERMIT = 0x00000200;
export const TF_NEEDSYN = 0x00000400;
export const TF_NEEDFIN = 0x00000800;
export const TF_NOPUSH = 0x00001000;
export const TF_PREVVALID = 0x00002000;
export const TF_MORETOCOME = 0x00010000;
export const TF_LQ_OVERFLOW = 0x00020000;
export const TF_LASTIDLE = 0x00040000;
export const TF_RXWIN0SENT = 0x00080000;
export const TF_FASTRECOVERY = 0x00100000;
export const TF_WASFRECOVERY = 0x00200000;
export const TF_SIGNATURE = 0x00400000;
export const TF_FORCEDATA = 0x00800000;
export const TF_TSO = 0x01000000;
export const TF_TOE = 0x02000000;
export const TF_CONGRECOVERY = 0x08000000;
export const TF_WASCRECOVERY = 0x10000000;
export const TF_ECN_PERMIT = 0x40000000;

// t_flags2
export const TF2_ECN_SND_CWR = 0x00000001;
export const TF2_ECN_SND_ECE = 0x00000002;
/** ECN was given up on the SYN after net.inet.tcp.ecn.maxretries retransmissions. */
export const TF2_ECN_SYN_DISABLED = 0x00000100;

// so_options (sys/socket.h)
export const SO_ACCEPTCONN_OPT = 0x0002;
export const SO_REUSEADDR_OPT = 0x0004;
export const SO_KEEPALIVE_OPT = 0x0008;
export const SO_LINGER_OPT = 0x0080;
export const SO_REUSEPORT_OPT = 0x0200;
export const SO_REUSEPORT_LB_OPT = 0x10000;

// so_state
export const SS_NBIO = 0x0100;
export const SS_ISCONNECTED = 0x0002;
export const SS_ISCONNECTING = 0x0004;
export const SS_ISDISCONNECTING = 0x0008;
export const SS_ISDISCONNECTED = 0x2000;

/** The RTT estimator's fixed point (tcp_var.h). */
export const TCP_RTT_SHIFT = 5;
export const TCP_RTTVAR_SHIFT = 4;
export const TCP_DELTA_SHIFT = 2;
export const TCP_MAXRXTSHIFT = 12;
export const TCP_MAXWIN = 65535;
export const TCPTV_REXMTMAX = 64000;
export const TCPTV_TWTRUNC = 8;
/** tcp_backoff[]: RTO multipliers by retransmission count. */
export const tcp_backoff: readonly number[] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 512, 512, 512];
/** tcp_totbackoff: the sum of tcp_backoff (persist and keepalive give up after it). */
export const tcp_totbackoff = 2559;

/**
 * A tcpcb's one callout (FreeBSD 14's t_callout): it knows its connection,
 * so the dispatcher (tcp_timer.ts) is one shared function rather than a
 * closure per connection. It is armed for the earliest of the tcpcb's
 * timer deadlines (tt_delack ... tt_2msl).
 */
export class TcpCallout extends Callout {
  constructor(
    wheel: CalloutWheel,
    readonly tp: Tcpcb,
  ) {
    super(wheel);
  }
}

/** No out-of-order data queued yet: the reassembly arrays are made by the first insertion (tcp_reass.ts). */
export const RQ_NONE_NUM: number[] = Object.freeze([] as number[]) as number[];
export const RQ_NONE_BOOL: boolean[] = Object.freeze([] as boolean[]) as boolean[];
/** No SACK block to report yet: tcp_update_sack_list makes the block array on the first out-of-order arrival. */
export const SACKBLKS_NONE = new Uint32Array(0);

/**
 * The TCP control block over its inpcb (in_pcb.ts: addresses, ports, the
 * hash links and INP_* flags): in FreeBSD a tcpcb embeds its inpcb, here
 * Tcpcb extends InPcb, so inp->tcpcb is the object itself and the shared
 * PCB tables (TcpTable.pcbinfo) hand back Tcpcbs.
 */
export class Tcpcb extends InPcb {
  /** Socket id (> 0) while the user holds it; 0 once closed (the connection finishes alone). */
  sockId = 0;
  state = TCPS_CLOSED;
  t_flags = 0;
  t_flags2 = 0;

  // inpcb (laddr, lport, faddr, fport, flags, soOptions: InPcb)
  ttl: number;
  tos = 0;
  /** TCP over UDP: the peer's UDP port (0: plain TCP). */
  t_port = 0;
  /** if_hw_tsomax of the route's interface, set with TF_TSO by tcp_mss (0: no TSO). */
  t_tsomax = 0;

  // socket (so_options is the inpcb's soOptions, which in_pcbbind reads for the reuse rules)
  so_state = 0;
  so_error = 0;
  so_linger = 0;
  readonly so_snd: Sockbuf;
  readonly so_rcv: Sockbuf;
  /** Listen: the accept queue (complete connections) and its limit. */
  so_comp: Tcpcb[] | null = null;
  so_qlimit = 0;
  /** A connection on a listener's accept queue points at it. */
  so_head: Tcpcb | null = null;

  // send sequence variables
  iss = 0;
  snd_una = 0;
  snd_nxt = 0;
  snd_max = 0;
  snd_up = 0;
  snd_wl1 = 0;
  snd_wl2 = 0;
  snd_wnd = 0;
  max_sndwnd = 0;
  snd_cwnd = 0;
  snd_ssthresh = 0;
  snd_recover = 0;
  /** Highest sequence sent before the last RTO (for bad-retransmit undo and NewReno). */
  snd_cwnd_prev = 0;
  snd_ssthresh_prev = 0;
  snd_recover_prev = 0;
  t_badrxtwin = 0;

  // receive sequence variables
  irs = 0;
  rcv_nxt = 0;
  rcv_wnd = 0;
  rcv_adv = 0;
  rcv_up = 0;
  last_ack_sent = 0;

  // options
  t_maxseg: number;
  /** The peer's MSS option (0: none). */
  t_peermss = 0;
  /** TCP_MAXSEG from the user (0: none). */
  t_usermss = 0;
  snd_scale = 0;
  rcv_scale = 0;
  request_r_scale = 0;
  requested_s_scale = 0;
  ts_recent = 0;
  ts_recent_age = 0;
  ts_offset = 0;

  // RTT and retransmission
  t_srtt = 0;
  t_rttvar = 0;
  t_rxtcur: number;
  t_rttmin: number;
  t_rxtshift = 0;
  t_rtttime = 0;
  t_rtseq = 0;
  t_rttupdated = 0;
  t_dupacks = 0;
  /** Segments limited transmit sent on this run of duplicate ACKs (RFC 3042). */
  snd_limited = 0;
  t_starttime = 0;
  t_rcvtime = 0;
  t_softerror = 0;
  t_sndzerowin = 0;
  t_sndrexmitpack = 0;
  t_rcvoopack = 0;
  t_lastdatarecv = 0;
  t_lastdatasent = 0;
  t_lastackrecv = 0;
  /** Bytes acknowledged since the last cwnd increment (RFC 3465 in congestion avoidance). */
  t_bytes_acked = 0;

  // receive-buffer autosizing (tcp_autorcvbuf): the open measurement window
  /** Tick at which it opened (set by tcp_output while so_rcv has SB_AUTOSIZE; 0: none open). */
  rfbuf_ts = 0;
  /** In-order bytes received since it opened. */
  rfbuf_cnt = 0;

  // congestion control (cc/): the algorithm (tcp_newtcpcb sets it: ccAttach) and its per-connection state
  cc_algo!: CcAlgo;
  t_ccv: CcVar = new CcVar(this);

  // user timers (0: the sysctl), ms
  t_keepinit = 0;
  t_keepidle = 0;
  t_keepintvl = 0;
  t_keepcnt = 0;
  t_keepprobes = 0;

  // RFC 5961 challenge ACK rate limit
  t_challenge_start = 0;
  t_challenge_cnt = 0;

  // reassembly queue: parallel arrays ordered by sequence (the shared empty RQ_NONE_* until the first segment queues)
  rq_seq: number[] = RQ_NONE_NUM;
  rq_len: number[] = RQ_NONE_NUM;
  rq_m: number[] = RQ_NONE_NUM;
  rq_fin: boolean[] = RQ_NONE_BOOL;
  /** The last mbuf of each entry's chain (contiguous segments are appended to one entry). */
  rq_tail: number[] = RQ_NONE_NUM;
  rq_bytes = 0;

  // receiver SACK blocks to report (sackblks), most recent first
  sackblks: Uint32Array = SACKBLKS_NONE;
  rcv_numsacks = 0;
  /** D-SACK block to report in the next ACK (start === end: none). */
  dsack_start = 0;
  dsack_end = 0;

  /**
   * Sender SACK scoreboard (snd_holes, snd_fack, sackhint), PRR and undo
   * state (tcp_sack.ts): read it here; the shared, frozen SACKHINT_NONE (all
   * initial values) until sackhintOf() makes the connection's own on its
   * first write (a SACK, a recovery, an RTO), so idle connections carry none.
   */
  sackhint: Readonly<SackHint> = SACKHINT_NONE;
  /** RACK-TLP state (tcp_rack.ts), made on the first transmission with net.inet.tcp.rack.enable. */
  rack: RackState | null = null;

  // timers (t_timers[]): the wheel tick each is due at, 0 when not armed
  // (ticks count from 1 up, so 0 is never a deadline). Small integers, not
  // objects: one callout (t_callout) runs the earliest (tcp_timer.ts).
  tt_delack = 0;
  tt_rexmt = 0;
  tt_persist = 0;
  tt_keep = 0;
  tt_2msl = 0;
  readonly t_callout: TcpCallout;

  constructor(readonly tcp: TcpTable) {
    super();
    const cfg = tcp.cfg;
    const w = tcp.st.td.callouts;
    this.t_callout = new TcpCallout(w, this);
    this.ttl = tcp.st.cfg.ttl;
    this.t_maxseg = cfg.mssdflt;
    this.t_rxtcur = cfg.rexmit_initial;
    this.t_rttmin = cfg.rexmit_min;
    this.so_snd = new Sockbuf(tcp.st.mb, cfg.sendspace);
    this.so_rcv = new Sockbuf(tcp.st.mb, cfg.recvspace);
  }

  /** so_options (SO_REUSEADDR, SO_LINGER ...): the inpcb's soOptions word under its socket name. */
  get so_options(): number {
    return this.soOptions;
  }
  set so_options(v: number) {
    this.soOptions = v;
  }

  // ---- per-connection keepalive values (TCP_KEEP* or the sysctls)
  keepinit(): number {
    return this.t_keepinit || this.tcp.cfg.keepinit;
  }
  keepidle(): number {
    return this.t_keepidle || this.tcp.cfg.keepidle;
  }
  keepintvl(): number {
    return this.t_keepintvl || this.tcp.cfg.keepintvl;
  }
  keepcnt(): number {
    return this.t_keepcnt || this.tcp.cfg.keepcnt;
  }

  /** Bytes in flight and not yet acknowledged. */
  get inflight(): number {
    return (this.snd_max - this.snd_una) >>> 0;
  }
}
