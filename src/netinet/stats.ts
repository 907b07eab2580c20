/**
 * Protocol statistics (netstat -s): one Float64Array per protocol per stack
 * instance. A stack instance is one CPU's thread, so counting is a plain
 * increment with no lock or atomic; readers sum the instances of every CPU
 * (sumStats). Names and descriptions follow FreeBSD's struct ipstat,
 * icmpstat, udpstat and arpstat, so the output reads like `netstat -s`.
 */

/** [field, netstat -s description with %d for the value]. */
type Desc = readonly (readonly [string, string])[];

function indices<T extends Desc>(d: T): { [K in T[number][0]]: number } {
  const o: Record<string, number> = {};
  d.forEach(([k], i) => (o[k] = i));
  return o as { [K in T[number][0]]: number };
}

export const IP_DESC = [
  ['total', '%d total packets received'],
  ['badsum', '%d bad header checksums'],
  ['toosmall', '%d with size smaller than minimum'],
  ['tooshort', '%d with data size < data length'],
  ['badhlen', '%d with header length < data size'],
  ['badlen', '%d with data length < header length'],
  ['badoptions', '%d with bad options'],
  ['badvers', '%d with incorrect version number'],
  ['fragments', '%d fragments received'],
  ['fragdropped', '%d fragments dropped (dup or out of space)'],
  ['fragtimeout', '%d fragments dropped after timeout'],
  ['badfrag', '%d malformed fragments dropped'],
  ['reassembled', '%d packets reassembled ok'],
  ['delivered', '%d packets for this host'],
  ['noproto', '%d packets for unknown/unsupported protocol'],
  ['forward', '%d packets forwarded'],
  ['cantforward', '%d packets not forwardable'],
  ['localout', '%d packets sent from this host'],
  ['odropped', '%d output packets dropped due to no bufs, etc.'],
  ['noroute', '%d output packets discarded due to no route'],
  ['fragmented', '%d output datagrams fragmented'],
  ['ofragments', '%d fragments created'],
  ['cantfrag', "%d datagrams that can't be fragmented"],
  ['nobufs', '%d input packets dropped for lack of memory'],
  ['badaddr', '%d datagrams with bad address in header'],
  ['notmember', "%d multicast packets which we don't join"],
  ['toolong', '%d with ip length > max ip packet size'],
] as const;

export const ICMP_DESC = [
  ['error', '%d calls to icmp_error'],
  ['oldicmp', "%d errors not generated in response to an icmp message"],
  ['outhist_echoreply', '%d echo replies sent'],
  ['outhist_unreach', '%d destination unreachable sent'],
  ['outhist_timxceed', '%d time exceeded sent'],
  ['badcode', '%d messages with bad code fields'],
  ['tooshort', '%d messages < minimum length'],
  ['checksum', '%d bad checksums'],
  ['badlen', '%d messages with bad length'],
  ['inhist_echo', '%d echo requests received'],
  ['inhist_echoreply', '%d echo replies received'],
  ['inhist_unreach', '%d destination unreachable received'],
  ['inhist_timxceed', '%d time exceeded received'],
  ['inhist_other', '%d other messages received'],
  ['reflect', '%d message responses generated'],
  ['bmcastecho', '%d broadcast echo requests ignored'],
  ['ratelimited', '%d responses suppressed by rate limiting (icmplim)'],
  ['noerror', '%d errors not sent for broadcasts, fragments or bad sources'],
  ['pmtuupdates', '%d path MTU updates from fragmentation needed'],
  ['refused', '%d port unreachables reported to connected sockets'],
  ['badaddr', '%d messages with bad return address not answered'],
] as const;

export const UDP_DESC = [
  ['ipackets', '%d datagrams received'],
  ['hdrops', '%d with incomplete header'],
  ['badlen', '%d with bad data length field'],
  ['badsum', '%d with bad checksum'],
  ['nosum', '%d with no checksum'],
  ['noport', '%d dropped due to no socket'],
  ['noportbcast', '%d broadcast/multicast datagrams undelivered'],
  ['fullsock', '%d dropped due to full socket buffers'],
  ['delivered', '%d delivered'],
  ['opackets', '%d datagrams output'],
  ['odropped', '%d output datagrams dropped (no memory, no route, too big)'],
] as const;

export const ARP_DESC = [
  ['txrequests', '%d ARP requests sent'],
  ['txreplies', '%d ARP replies sent'],
  ['rxrequests', '%d ARP requests received'],
  ['rxreplies', '%d ARP replies received'],
  ['received', '%d ARP packets received'],
  ['malformed', '%d malformed ARP packets dropped'],
  ['dropped', '%d total packets dropped due to no ARP entry'],
  ['timeouts', '%d ARP entries timed out'],
  ['dupips', '%d duplicate IPs seen'],
  ['gratuitous', '%d gratuitous ARPs sent'],
  ['badsha', '%d ARP packets with a broadcast or multicast sender address dropped'],
  ['offlink', '%d ARP senders not on the interface network ignored'],
  ['permanent', '%d attempts to modify permanent ARP entries refused'],
  ['tablefull', '%d ARP entries not made: table full (max_entries)'],
] as const;

export const ETHER_DESC = [
  ['tooshort', '%d frames shorter than an Ethernet header'],
  ['notours', '%d frames for another host dropped'],
  ['noproto', '%d frames of an unsupported EtherType'],
] as const;

export const IPS = indices(IP_DESC);
export const ICPS = indices(ICMP_DESC);
export const UDPS = indices(UDP_DESC);
export const ARPS = indices(ARP_DESC);
export const ETHS = indices(ETHER_DESC);

export interface NetStats {
  ip: Float64Array;
  icmp: Float64Array;
  udp: Float64Array;
  arp: Float64Array;
  ether: Float64Array;
}

export function newStats(): NetStats {
  return {
    ip: new Float64Array(IP_DESC.length),
    icmp: new Float64Array(ICMP_DESC.length),
    udp: new Float64Array(UDP_DESC.length),
    arp: new Float64Array(ARP_DESC.length),
    ether: new Float64Array(ETHER_DESC.length),
  };
}

/** Sum the statistics of several stack instances (one per CPU). */
export function sumStats(all: NetStats[]): NetStats {
  const s = newStats();
  for (const x of all) for (const k of Object.keys(s) as (keyof NetStats)[]) for (let i = 0; i < s[k].length; i++) s[k][i] += x[k][i];
  return s;
}

/** A named view {field: value} of one protocol's counters (for tests and JSON). */
export function statObject(d: Desc, v: Float64Array): Record<string, number> {
  const o: Record<string, number> = {};
  d.forEach(([k], i) => (o[k] = v[i]));
  return o;
}

/** `netstat -s` text for the counters (zero lines omitted, as netstat does with -z off). */
export function formatNetstatS(s: NetStats, showZero = false): string {
  const out: string[] = [];
  const sect = (name: string, d: Desc, v: Float64Array) => {
    out.push(`${name}:`);
    d.forEach(([, text], i) => {
      if (v[i] !== 0 || showZero) out.push('\t' + text.replace('%d', String(v[i])));
    });
  };
  sect('ether', ETHER_DESC, s.ether);
  sect('arp', ARP_DESC, s.arp);
  sect('ip', IP_DESC, s.ip);
  sect('icmp', ICMP_DESC, s.icmp);
  sect('udp', UDP_DESC, s.udp);
  return out.join('\n');
}
