/**
 * Proportional Rate Reduction (RFC 6937), FreeBSD's tcp_do_prr_ack
 * (net.inet.tcp.do_prr, default on as in FreeBSD 14): inside a SACK
 * recovery episode, each ACK lets out data in proportion to what it
 * delivered, so the flight shrinks smoothly from RecoverFS to ssthresh
 * instead of stalling half a window and then bursting; once the pipe has
 * fallen below ssthresh, the slow start reduction bound (PRR-SSRB) grows
 * it back by at most what was delivered plus one segment, or exactly what
 * was delivered (PRR-CRB) after further loss, an ACK delivering nothing, or
 * with net.inet.tcp.do_prr_conservative.
 *
 * The result is expressed as cwnd = pipe + sndcnt (whole segments, as
 * FreeBSD rounds), which tcp_output turns into sndcnt bytes of
 * (re)transmission through cwnd - pipe. cc owns ssthresh; this file only
 * shapes cwnd inside recovery.
 *
 * Per connection on the stack's thread; no lock; never sleeps.
 */
import { SACK_NEWLOSS, sackhintOf, tcpComputePipe } from './tcp_sack.js';
import { seqDiff } from './tcp_seq.js';
import { TCPS_STAT } from './tcp_stats.js';
import type { Tcpcb } from './tcp_var.js';

/** Recovery begins: RecoverFS is the flight, nothing delivered or sent yet. */
export function tcpPrrStart(tp: Tcpcb): void {
  const sh = sackhintOf(tp);
  sh.prr_delivered = 0;
  sh.prr_out = 0;
  sh.recover_fs = Math.max(1, seqDiff(tp.snd_max, tp.snd_una));
  tp.tcp.stats[TCPS_STAT.prr_episodes]++;
}

/**
 * tcp_do_prr_ack: an ACK in recovery delivered sh.delivered_data bytes;
 * set cwnd so that tcp_output may send PRR's sndcnt. `sackChanged` is
 * tcp_sack_doack's answer (SACK_NEWLOSS: be conservative).
 */
export function tcpPrrAck(tp: Tcpcb, sackChanged: number, maxseg: number): void {
  const sh = sackhintOf(tp);
  const del = sh.delivered_data;
  const pipe = tcpComputePipe(tp);
  const ssthresh = tp.snd_ssthresh;
  sh.prr_delivered += del;
  let segs: number;
  if (pipe > ssthresh) {
    // Proportional part: ssthresh/RecoverFS of what was delivered, rounded up to segments.
    const sndcnt = Math.ceil((sh.prr_delivered * ssthresh) / sh.recover_fs) - sh.prr_out;
    segs = sndcnt > 0 ? Math.ceil(sndcnt / maxseg) : 0;
  } else {
    const crb = tp.tcp.cfg.do_prr_conservative !== 0 || sackChanged === SACK_NEWLOSS || del === 0;
    const limit = crb ? sh.prr_delivered - sh.prr_out : Math.max(sh.prr_delivered - sh.prr_out, del) + maxseg;
    const sndcnt = Math.min(ssthresh - pipe, limit);
    segs = sndcnt > 0 ? Math.floor(sndcnt / maxseg) : 0;
  }
  // The fast retransmit itself is never held back.
  if (sh.prr_out === 0 && segs === 0) segs = 1;
  tp.snd_cwnd = pipe + segs * maxseg;
}
