/**
 * TCP statistics (struct tcpstat) with netstat -s's wording, one
 * Float64Array per stack instance (plain increments on the stack's thread;
 * readers sum instances, as counter(9)).
 */

type Desc = readonly (readonly [string, string])[];

export const TCP_DESC = [
  ['sndtotal', '%d packets sent'],
  ['sndpack', '%d data packets sent'],
  ['sndbyte', '%d data bytes sent'],
  ['sndrexmitpack', '%d data packets retransmitted'],
  ['sndrexmitbyte', '%d data bytes retransmitted'],
  ['sndrexmitbad', '%d data packets unnecessarily retransmitted'],
  ['sndacks', '%d ack-only packets'],
  ['delack', '%d delayed acks sent'],
  ['sndprobe', '%d window probe packets'],
  ['sndwinup', '%d window update packets'],
  ['sndctrl', '%d control packets'],
  ['rcvtotal', '%d packets received'],
  ['rcvackpack', '%d acks'],
  ['rcvackbyte', '%d bytes acked'],
  ['rcvdupack', '%d duplicate acks'],
  ['rcvacktoomuch', '%d acks for unsent data'],
  ['rcvpack', '%d packets received in-sequence'],
  ['rcvbyte', '%d bytes received in-sequence'],
  ['rcvduppack', '%d completely duplicate packets'],
  ['rcvdupbyte', '%d completely duplicate bytes'],
  ['pawsdrop', '%d old duplicate packets'],
  ['rcvpartduppack', '%d packets with some dup. data'],
  ['rcvpartdupbyte', '%d bytes duped in packets with some dup. data'],
  ['rcvoopack', '%d out-of-order packets'],
  ['rcvoobyte', '%d out-of-order bytes'],
  ['rcvpackafterwin', '%d packets of data after window'],
  ['rcvbyteafterwin', '%d bytes of data after window'],
  ['rcvwinprobe', '%d window probes'],
  ['rcvwinupd', '%d window update packets'],
  ['rcvafterclose', '%d packets received after close'],
  ['rcvbadsum', '%d discarded for bad checksums'],
  ['rcvbadoff', '%d discarded for bad header offset fields'],
  ['rcvshort', '%d discarded because packet too short'],
  ['rcvreassfull', '%d discarded due to no space in reassembly queue'],
  ['rcvmemdrop', '%d discarded due to memory problems'],
  ['connattempt', '%d connection requests'],
  ['accepts', '%d connection accepts'],
  ['badsyn', '%d bad connection attempts'],
  ['listendrop', '%d listen queue overflows'],
  ['badrst', '%d ignored RSTs in the windows'],
  ['connects', '%d connections established (including accepts)'],
  ['closed', '%d connections closed'],
  ['drops', '%d connections dropped'],
  ['cachedrtt', '%d connections updated cached RTT on close'],
  ['usedrtt', '%d connections started from a cached RTT'],
  ['conndrops', '%d embryonic connections dropped'],
  ['rttupdated', '%d segments updated rtt'],
  ['segstimed', '%d segments timed for rtt'],
  ['rexmttimeo', '%d retransmit timeouts'],
  ['timeoutdrop', '%d connections dropped by rexmit timeout'],
  ['persisttimeo', '%d persist timeouts'],
  ['persistdrop', '%d connections dropped by persist timeout'],
  ['finwait2_drops', '%d Connections (fin_wait_2) dropped because of timeout'],
  ['keeptimeo', '%d keepalive timeouts'],
  ['keepprobe', '%d keepalive probes sent'],
  ['keepdrops', '%d connections dropped by keepalive'],
  ['predack', '%d correct ACK header predictions'],
  ['preddat', '%d correct data packet header predictions'],
  ['sc_added', '%d syncache entries added'],
  ['sc_retransmitted', '%d syncache entries retransmitted'],
  ['sc_dupsyn', '%d syncache dupsyn'],
  ['sc_dropped', '%d syncache entries dropped'],
  ['sc_completed', '%d syncache entries completed'],
  ['sc_cacheoverflow', '%d syncache cache overflows'],
  ['sc_reset', '%d syncache entries reset'],
  ['sc_stale', '%d syncache entries stale'],
  ['sc_aborted', '%d syncache entries aborted'],
  ['sc_badack', '%d syncache badack'],
  ['sc_unreach', '%d syncache unreach'],
  ['sc_sendcookie', '%d cookies sent'],
  ['sc_recvcookie', '%d cookies received'],
  ['sack_recovery_episode', '%d SACK recovery episodes'],
  ['sack_rexmits', '%d segment rexmits in SACK recovery episodes'],
  ['sack_rcv_blocks', '%d SACK options (SACK blocks) received'],
  ['sack_send_blocks', '%d SACK options (SACK blocks) sent'],
  ['sack_rexmit_bytes', '%d byte rexmits in SACK recovery episodes'],
  ['sack_sboverflow', '%d SACK scoreboard overflow'],
  ['sack_rescue', '%d SACK rescue retransmissions'],
  ['sack_lostrexmt', '%d SACK retransmissions lost'],
  ['dsack_sent', '%d D-SACK blocks sent'],
  ['dsack_count', '%d D-SACK blocks received'],
  ['dsack_bytes', '%d bytes reported by D-SACK'],
  ['sack_undo', '%d SACK recovery episodes undone (all retransmissions D-SACKed)'],
  ['rack_lost', '%d segments marked lost by RACK'],
  ['rack_reorder_seen', '%d times RACK saw reordering'],
  ['rack_reorder_timeouts', '%d RACK reordering timeouts'],
  ['rack_tlp_new', '%d tail loss probes of new data'],
  ['rack_tlp_retran', '%d tail loss probes retransmitting the last segment'],
  ['rack_tlp_recovered', '%d tail losses repaired by a probe'],
  ['rack_tlp_spurious', '%d tail loss probes found unneeded'],
  ['prr_episodes', '%d recovery episodes with proportional rate reduction'],
  ['ecn_ce', '%d packets with ECN CE bit set'],
  ['ecn_ect0', '%d packets with ECN ECT(0) bit set'],
  ['ecn_ect1', '%d packets with ECN ECT(1) bit set'],
  ['ecn_sndect0', '%d packets sent with ECN ECT(0) bit set'],
  ['ecn_shs', '%d successful ECN handshakes'],
  ['ecn_rcwnd', '%d times ECN reduced the congestion window'],
  ['ack_war', '%d challenge ACKs sent'],
  ['ack_war_limited', '%d challenge ACKs suppressed by the rate limit'],
  ['synfin_drop', '%d SYN+FIN segments dropped (drop_synfin)'],
  ['icmp_drops', '%d connections dropped by ICMP errors'],
] as const;

function indices<T extends Desc>(d: T): { [K in T[number][0]]: number } {
  const o: Record<string, number> = {};
  d.forEach(([k], i) => (o[k] = i));
  return o as { [K in T[number][0]]: number };
}

export const TCPS_STAT = indices(TCP_DESC);

export function newTcpStats(): Float64Array {
  return new Float64Array(TCP_DESC.length);
}

/** The tcp: section of netstat -s (zero lines omitted unless showZero). */
export function formatTcpStats(v: Float64Array, showZero = false): string {
  const out = ['tcp:'];
  TCP_DESC.forEach(([, text], i) => {
    if (v[i] !== 0 || showZero) out.push('\t' + text.replace('%d', String(v[i])));
  });
  return out.join('\n');
}

/** {field: value} of the counters (tests, JSON). */
export function tcpStatObject(v: Float64Array): Record<string, number> {
  const o: Record<string, number> = {};
  TCP_DESC.forEach(([k], i) => (o[k] = v[i]));
  return o;
}
