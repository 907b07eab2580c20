/**
 * The TCP host cache's metrics (tcp_hostcache.c): when a connection that
 * measured its RTT often enough closes, its smoothed RTT, variance and
 * slow-start threshold are remembered per peer address, and the next
 * connection to that peer starts from them instead of the initial RTO
 * (cc_conn_init). Entries expire after net.inet.tcp.hostcache.expire
 * seconds; net.inet.tcp.hostcache.purgenow empties the cache (with the
 * path MTUs of the IP host cache). net.inet.tcp.hostcache.enable turns it off.
 *
 * Per stack instance on its thread; no lock; never sleeps.
 */
import type { Tcpcb } from './tcp_var.js';
import { TCP_MAXWIN } from './tcp_var.js';
import { TCPS_STAT } from './tcp_stats.js';

interface HcEntry {
  srtt: number;
  rttvar: number;
  ssthresh: number;
  at: number;
}

/** FreeBSD updates the cache only from connections with this many RTT samples (tcp_close). */
const HC_MIN_SAMPLES = 4;

export class TcpHostCache {
  private readonly map = new Map<number, HcEntry>();

  get size(): number {
    return this.map.size;
  }

  /** tcp_hc_update from a closing connection. */
  update(tp: Tcpcb, now: number): void {
    const cfg = tp.tcp.cfg;
    if (cfg.hostcache_enable === 0 || tp.t_rttupdated < HC_MIN_SAMPLES || tp.faddr === 0) return;
    tp.tcp.stats[TCPS_STAT.cachedrtt]++;
    const old = this.map.get(tp.faddr);
    const ssthresh = tp.snd_ssthresh < TCP_MAXWIN << 14 ? tp.snd_ssthresh : 0;
    if (old === undefined) this.map.set(tp.faddr, { srtt: tp.t_srtt, rttvar: tp.t_rttvar, ssthresh, at: now });
    else {
      // FreeBSD averages the new values with the cached ones.
      old.srtt = (old.srtt + tp.t_srtt) >> 1;
      old.rttvar = (old.rttvar + tp.t_rttvar) >> 1;
      if (ssthresh !== 0) old.ssthresh = old.ssthresh === 0 ? ssthresh : (old.ssthresh + ssthresh) >> 1;
      old.at = now;
    }
  }

  /** tcp_hc_get: the metrics for faddr, or null (expired entries go). */
  get(tp: Tcpcb, now: number): HcEntry | null {
    const cfg = tp.tcp.cfg;
    if (cfg.hostcache_enable === 0) return null;
    const e = this.map.get(tp.faddr);
    if (e === undefined) return null;
    if (now - e.at > cfg.hostcache_expire * 1000) {
      this.map.delete(tp.faddr);
      return null;
    }
    return e;
  }

  purge(): void {
    this.map.clear();
  }
}
