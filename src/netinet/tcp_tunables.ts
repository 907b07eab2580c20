/**
 * TCP's tunables (FreeBSD's net.inet.tcp.* names, defaults and units): one
 * TcpConfig per stack instance, read live by the protocol on every use, so a
 * write through sysctl takes effect on the next segment or timer. Times are
 * milliseconds as FreeBSD's sysctl handlers show them (keepidle, msl,
 * rexmit_*). kern.ipc.maxsockbuf is the arena-wide word the socket layer
 * reads too (src/kern/socket/sysctl.ts).
 *
 * Per stack instance; no lock; never sleeps.
 */
import { ArgumentError } from '../kern/errors.js';
import { tunableIndex } from '../kern/sysctl/tunables.js';
import type { Arena } from '../vm/arena.js';

export interface TcpConfig {
  mssdflt: number;
  minmss: number;
  rfc1323: number;
  sack_enable: number;
  sack_maxholes: number;
  sack_globalmaxholes: number;
  sack_revised: number;
  do_prr: number;
  do_prr_conservative: number;
  rack_enable: number;
  rack_tlp: number;
  ecn_enable: number;
  ecn_maxretries: number;
  blackhole: number;
  insecure_rst: number;
  insecure_syn: number;
  drop_synfin: number;
  rexmit_initial: number;
  rexmit_min: number;
  rexmit_slop: number;
  rexmit_drop_options: number;
  delayed_ack: number;
  sendbuf_auto: number;
  sendbuf_inc: number;
  sendbuf_max: number;
  /** net.inet.tcp.recvbuf_auto: grow so_rcv with the measured bandwidth-delay product (tcp_autorcvbuf). */
  recvbuf_auto: number;
  /** net.inet.tcp.recvbuf_max: the most so_rcv grows to by itself (bytes). */
  recvbuf_max: number;
  delacktime: number;
  msl: number;
  keepinit: number;
  keepidle: number;
  keepintvl: number;
  keepcnt: number;
  always_keepalive: number;
  finwait2_timeout: number;
  fast_finwait2_recycle: number;
  persmin: number;
  persmax: number;
  sendspace: number;
  /** net.inet.tcp.tso: use TCP segmentation offload where the interface has it. */
  tso: number;
  recvspace: number;
  ack_war_timewindow: number;
  ack_war_cnt: number;
  icmp_may_rst: number;
  reass_maxqueuelen: number;
  syncookies: number;
  syncookies_only: number;
  syncache_cachelimit: number;
  syncache_rexmtlimit: number;
  initcwnd_segments: number;
  abc_l_var: number;
  /** net.inet.tcp.cc.algorithm: the default congestion control for new connections (cc_list.ts). */
  cc_algorithm: string;
  cc_abe: number;
  cc_abe_frlossreduce: number;
  newreno_beta: number;
  newreno_beta_ecn: number;
  /** HyStart++ (cc_hystart.ts): whether new connections may use it, and RFC 9406's parameters (usec, samples, divisor, rounds). */
  hystart_allowed: number;
  hystart_minrtt_thresh: number;
  hystart_maxrtt_thresh: number;
  hystart_n_rttsamples: number;
  hystart_css_growth_div: number;
  hystart_css_rounds: number;
  rfc3042: number;
  path_mtu_discovery: number;
  udp_tunneling_port: number;
  udp_tunneling_overhead: number;
  isn_reseed_interval: number;
  soacceptqueue: number;
  /** kern.ipc.zero_copy.send: a write() of arena memory (allocBuffer) is referenced, not copied (lib/zcopy.ts). */
  zero_copy_send: number;
  /** kern.ipc.zero_copy.send_min (slabnet): the smallest write referenced rather than copied, bytes. */
  zero_copy_send_min: number;
  maxsockbuf: number;
  hostcache_purgenow: number;
  hostcache_enable: number;
  hostcache_expire: number;
}

export const TCP_DEFAULTS: TcpConfig = {
  mssdflt: 536,
  minmss: 216,
  rfc1323: 1,
  sack_enable: 1,
  sack_maxholes: 128,
  sack_globalmaxholes: 65536,
  sack_revised: 1,
  do_prr: 1,
  do_prr_conservative: 0,
  rack_enable: 0,
  rack_tlp: 1,
  ecn_enable: 2,
  ecn_maxretries: 1,
  blackhole: 0,
  insecure_rst: 0,
  insecure_syn: 0,
  drop_synfin: 0,
  rexmit_initial: 1000,
  rexmit_min: 30,
  rexmit_slop: 200,
  rexmit_drop_options: 0,
  delayed_ack: 1,
  sendbuf_auto: 1,
  sendbuf_inc: 8192,
  sendbuf_max: 2097152,
  recvbuf_auto: 1,
  recvbuf_max: 2097152,
  delacktime: 40,
  msl: 30000,
  keepinit: 75000,
  keepidle: 7200000,
  keepintvl: 75000,
  keepcnt: 8,
  always_keepalive: 1,
  finwait2_timeout: 60000,
  fast_finwait2_recycle: 0,
  persmin: 5000,
  persmax: 60000,
  sendspace: 32768,
  tso: 1,
  recvspace: 65536,
  ack_war_timewindow: 1000,
  ack_war_cnt: 5,
  icmp_may_rst: 1,
  reass_maxqueuelen: 100,
  syncookies: 1,
  syncookies_only: 0,
  syncache_cachelimit: 15360,
  syncache_rexmtlimit: 3,
  initcwnd_segments: 10,
  abc_l_var: 2,
  cc_algorithm: 'cubic',
  cc_abe: 0,
  cc_abe_frlossreduce: 0,
  newreno_beta: 50,
  newreno_beta_ecn: 80,
  hystart_allowed: 0,
  hystart_minrtt_thresh: 4000,
  hystart_maxrtt_thresh: 16000,
  hystart_n_rttsamples: 8,
  hystart_css_growth_div: 4,
  hystart_css_rounds: 5,
  rfc3042: 1,
  path_mtu_discovery: 1,
  udp_tunneling_port: 0,
  udp_tunneling_overhead: 8,
  isn_reseed_interval: 0,
  soacceptqueue: 128,
  zero_copy_send: 1,
  zero_copy_send_min: 4096,
  maxsockbuf: 2 * 1024 * 1024,
  hostcache_purgenow: 0,
  hostcache_enable: 1,
  hostcache_expire: 3600,
};

/** The numeric fields (every one but cc_algorithm). */
type NumKey = { [K in keyof TcpConfig]: TcpConfig[K] extends number ? K : never }[keyof TcpConfig];

/** [sysctl name, field, description, min, max]. */
export const TCP_NODES: readonly (readonly [string, NumKey, string, number, number])[] = [
  ['net.inet.tcp.mssdflt', 'mssdflt', 'Default TCP Maximum Segment Size', 88, 65535],
  ['net.inet.tcp.minmss', 'minmss', 'Minimum TCP Maximum Segment Size', 88, 65535],
  ['net.inet.tcp.rfc1323', 'rfc1323', 'Enable rfc1323 (high performance TCP) extensions', 0, 3],
  ['net.inet.tcp.sack.enable', 'sack_enable', 'Enable/Disable TCP SACK support', 0, 1],
  ['net.inet.tcp.sack.maxholes', 'sack_maxholes', 'Maximum number of TCP SACK holes allowed per connection', 1, 0x7fffffff],
  ['net.inet.tcp.sack.globalmaxholes', 'sack_globalmaxholes', 'Global maximum number of TCP SACK holes', 1, 0x7fffffff],
  ['net.inet.tcp.sack.revised', 'sack_revised', 'Use revised SACK loss recovery per RFC 6675', 0, 1],
  ['net.inet.tcp.do_prr', 'do_prr', 'Enable Proportional Rate Reduction per RFC 6937', 0, 1],
  ['net.inet.tcp.do_prr_conservative', 'do_prr_conservative', 'Do conservative Proportional Rate Reduction', 0, 1],
  ['net.inet.tcp.rack.enable', 'rack_enable', 'RACK-TLP loss detection (RFC 8985); FreeBSD: net.inet.tcp.functions_default=rack', 0, 1],
  ['net.inet.tcp.rack.tlp', 'rack_tlp', 'Tail loss probes while RACK is on', 0, 1],
  ['net.inet.tcp.ecn.enable', 'ecn_enable', 'TCP ECN support', 0, 4],
  ['net.inet.tcp.ecn.maxretries', 'ecn_maxretries', 'Max retries before giving up on ECN', 0, 100],
  ['net.inet.tcp.blackhole', 'blackhole', 'Do not send RST on segments to closed ports', 0, 3],
  ['net.inet.tcp.insecure_rst', 'insecure_rst', 'Follow RFC793 instead of RFC5961 criteria for accepting RST packets', 0, 1],
  ['net.inet.tcp.insecure_syn', 'insecure_syn', 'Follow RFC793 instead of RFC5961 criteria for accepting SYN packets', 0, 1],
  ['net.inet.tcp.drop_synfin', 'drop_synfin', 'Drop TCP packets with SYN+FIN set', 0, 1],
  ['net.inet.tcp.rexmit_initial', 'rexmit_initial', 'Initial Retransmission Timeout (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.rexmit_min', 'rexmit_min', 'Minimum Retransmission Timeout (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.rexmit_slop', 'rexmit_slop', 'Retransmission Timer Slop (ms)', 0, 0x7fffffff],
  ['net.inet.tcp.rexmit_drop_options', 'rexmit_drop_options', 'Drop TCP options from 3rd and later retransmitted SYN', 0, 1],
  ['net.inet.tcp.delayed_ack', 'delayed_ack', 'Delay ACK to try and piggyback it onto a data packet', 0, 1],
  ['net.inet.tcp.sendbuf_auto', 'sendbuf_auto', 'Enable automatic send buffer sizing', 0, 1],
  ['net.inet.tcp.sendbuf_inc', 'sendbuf_inc', 'Incrementor step size of automatic send buffer', 1, 0x7fffffff],
  ['net.inet.tcp.sendbuf_max', 'sendbuf_max', 'Max size of automatic send buffer', 1, 0x7fffffff],
  ['net.inet.tcp.recvbuf_auto', 'recvbuf_auto', 'Enable automatic receive buffer sizing', 0, 1],
  ['net.inet.tcp.recvbuf_max', 'recvbuf_max', 'Max size of automatic receive buffer', 1, 0x7fffffff],
  ['net.inet.tcp.delacktime', 'delacktime', 'Time before a delayed ACK is sent (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.msl', 'msl', 'Maximum Segment Lifetime (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.keepinit', 'keepinit', 'time to establish connection (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.keepidle', 'keepidle', 'time before keepalive probes begin (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.keepintvl', 'keepintvl', 'time between keepalive probes (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.keepcnt', 'keepcnt', 'Number of keepalive probes to send', 1, 0x7fffffff],
  ['net.inet.tcp.always_keepalive', 'always_keepalive', 'Assume SO_KEEPALIVE on all TCP connections', 0, 1],
  ['net.inet.tcp.finwait2_timeout', 'finwait2_timeout', 'FIN-WAIT2 timeout (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.fast_finwait2_recycle', 'fast_finwait2_recycle', 'Recycle closed FIN_WAIT_2 connections faster', 0, 1],
  ['net.inet.tcp.persmin', 'persmin', 'minimum persistence interval (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.persmax', 'persmax', 'maximum persistence interval (ms)', 1, 0x7fffffff],
  ['net.inet.tcp.sendspace', 'sendspace', 'Initial send socket buffer size', 1, 0x7fffffff],
  ['net.inet.tcp.tso', 'tso', 'Enable TCP Segmentation Offload', 0, 1],
  ['net.inet.tcp.recvspace', 'recvspace', 'Initial receive socket buffer size', 1, 0x7fffffff],
  ['net.inet.tcp.ack_war_timewindow', 'ack_war_timewindow', 'Time interval in ms used to limit the number (ack_war_cnt) of challenge ACKs sent per TCP connection', 0, 0x7fffffff],
  ['net.inet.tcp.ack_war_cnt', 'ack_war_cnt', 'Maximum number of challenge ACKs sent per TCP connection during the time interval (ack_war_timewindow)', 0, 0x7fffffff],
  ['net.inet.tcp.icmp_may_rst', 'icmp_may_rst', 'Certain ICMP unreachable messages may abort connections in SYN_SENT', 0, 1],
  ['net.inet.tcp.reass.maxqueuelen', 'reass_maxqueuelen', 'Maximum number of TCP Segments per Reassembly Queue', 0, 0x7fffffff],
  ['net.inet.tcp.syncookies', 'syncookies', 'Use TCP SYN cookies if the syncache overflows', 0, 1],
  ['net.inet.tcp.syncookies_only', 'syncookies_only', 'Use only TCP SYN cookies', 0, 1],
  ['net.inet.tcp.syncache.cachelimit', 'syncache_cachelimit', 'Overall entry limit for syncache', 0, 0x7fffffff],
  ['net.inet.tcp.syncache.rexmtlimit', 'syncache_rexmtlimit', 'Limit on SYN/ACK retransmissions', 0, 64],
  ['net.inet.tcp.initcwnd_segments', 'initcwnd_segments', 'Slow-start flight size (initial congestion window) in number of segments', 0, 0x7fffffff],
  ['net.inet.tcp.abc_l_var', 'abc_l_var', 'Cap the max cwnd increment during slow-start to this number of segments', 1, 0x7fffffff],
  ['net.inet.tcp.cc.abe', 'cc_abe', 'Enable draft-ietf-tcpm-alternativebackoff-ecn (TCP Alternative Backoff with ECN)', 0, 1],
  ['net.inet.tcp.cc.abe_frlossreduce', 'cc_abe_frlossreduce', 'Apply standard beta instead of ABE-beta during ECN-signalled congestion recovery episodes if loss also needs to be repaired', 0, 1],
  ['net.inet.tcp.cc.newreno.beta', 'newreno_beta', 'New Reno beta, specified as number between 1 and 100', 1, 100],
  ['net.inet.tcp.cc.newreno.beta_ecn', 'newreno_beta_ecn', 'New Reno beta ecn, specified as number between 1 and 100', 1, 100],
  ['net.inet.tcp.cc.hystartplusplus.allowed', 'hystart_allowed', 'New connections may use HyStart++ slow start (slabnet; FreeBSD sets CCF_HYSTART_ALLOWED only from RACK)', 0, 1],
  ['net.inet.tcp.cc.hystartplusplus.minrtt_thresh', 'hystart_minrtt_thresh', 'HyStarts++ minimum RTT thresh used in clamp (in microseconds)', 0, 0x7fffffff],
  ['net.inet.tcp.cc.hystartplusplus.maxrtt_thresh', 'hystart_maxrtt_thresh', 'HyStarts++ maximum RTT thresh used in clamp (in microseconds)', 0, 0x7fffffff],
  ['net.inet.tcp.cc.hystartplusplus.n_rttsamples', 'hystart_n_rttsamples', 'The number of RTT samples that must be seen to consider HyStart++', 1, 0x7fffffff],
  ['net.inet.tcp.cc.hystartplusplus.css_growth_div', 'hystart_css_growth_div', 'The divisor to the growth when in Hystart++ CSS', 1, 0x7fffffff],
  ['net.inet.tcp.cc.hystartplusplus.css_rounds', 'hystart_css_rounds', 'The number of rounds HyStart++ lasts in CSS before falling to CA', 1, 0x7fffffff],
  ['net.inet.tcp.rfc3042', 'rfc3042', 'Enable RFC 3042 (Limited Transmit)', 0, 1],
  ['net.inet.tcp.path_mtu_discovery', 'path_mtu_discovery', 'Enable Path MTU Discovery', 0, 1],
  ['net.inet.tcp.udp_tunneling_port', 'udp_tunneling_port', 'Tunneling port for tcp over udp', 0, 65535],
  ['net.inet.tcp.udp_tunneling_overhead', 'udp_tunneling_overhead', 'MSS reduction when using tcp over udp', 0, 1024],
  ['net.inet.tcp.isn_reseed_interval', 'isn_reseed_interval', 'Seconds between reseeding of ISN secret', 0, 0x7fffffff],
  ['kern.ipc.soacceptqueue', 'soacceptqueue', 'Maximum listen socket pending connection accept queue size', 1, 65535],
  ['kern.ipc.zero_copy.send', 'zero_copy_send', 'Enable zero copy send', 0, 1],
  ['kern.ipc.zero_copy.send_min', 'zero_copy_send_min', 'Smallest write of arena memory sent by reference, bytes (slabnet; FreeBSD required a page)', 1, 0x7fffffff],
  ['net.inet.tcp.hostcache.purgenow', 'hostcache_purgenow', 'Immediately purge all entries', 0, 1],
  ['net.inet.tcp.hostcache.enable', 'hostcache_enable', 'Enable the TCP hostcache', 0, 1],
  ['net.inet.tcp.hostcache.expire', 'hostcache_expire', 'Expire time of TCP hostcache entries (s)', 1, 0x7fffffff],
];

export interface TcpSysctlNode {
  name: string;
  /** 'int' unless said (net.inet.tcp.cc.algorithm and cc.available are strings). */
  type?: 'int' | 'string';
  description: string;
  get: () => number | string;
  /** Absent on read-only nodes. */
  set?: (v: number | string) => void;
}

/** A fresh config: FreeBSD's defaults with the caller's overrides. */
export function tcpConfig(over: Partial<TcpConfig> = {}): TcpConfig {
  return { ...TCP_DEFAULTS, ...over };
}

/**
 * Make cfg.maxsockbuf read and write the arena's kern.ipc.maxsockbuf word
 * (shared with the socket layer and every thread). No lock (one atomic).
 */
export function bindMaxsockbuf(cfg: TcpConfig, arena: Arena): void {
  const i32 = arena.i32;
  const idx = tunableIndex(arena, 'kern.ipc.maxsockbuf', TCP_DEFAULTS.maxsockbuf);
  Object.defineProperty(cfg, 'maxsockbuf', {
    configurable: true,
    enumerable: true,
    get: () => Atomics.load(i32, idx),
    set: (v: number) => void Atomics.store(i32, idx, v),
  });
}

/**
 * The sysctl nodes of a config; `onPurge` runs for a write to
 * net.inet.tcp.hostcache.purgenow (the value reads back 0 as FreeBSD's).
 * The congestion-control string nodes come from cc_list.ts (ccSysctlNodes).
 */
export function tcpSysctlNodes(cfg: TcpConfig, onPurge: () => void): TcpSysctlNode[] {
  const out: TcpSysctlNode[] = TCP_NODES.map(([name, key, description, min, max]) => ({
    name,
    description,
    get: () => cfg[key],
    set: (v: number | string) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ArgumentError(`${name}: bad value ${v} (range ${min} .. ${max})`);
      if (key === 'hostcache_purgenow') {
        if (v !== 0) onPurge();
        return;
      }
      cfg[key] = v;
    },
  }));
  out.push({
    name: 'kern.ipc.maxsockbuf',
    description: 'Maximum socket buffer size',
    get: () => cfg.maxsockbuf,
    set: (v: number | string) => {
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 2048 || v > 1 << 30) throw new ArgumentError(`kern.ipc.maxsockbuf: bad value ${v}`);
      cfg.maxsockbuf = v;
    },
  });
  return out;
}
