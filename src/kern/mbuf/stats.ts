/**
 * `netstat -m` (FreeBSD usr.bin/netstat/mbuf.c) from the zone statistics of
 * the mbuf zones. The packet zone's cached items each hold a cluster, so
 * (as netstat does) those clusters count as cache, not in use.
 *
 * Reads per-CPU counters without locks: a report may be a few operations
 * stale while other workers run.
 */
import { zoneStats } from '../../uma/stats.js';
import * as L from './layout.js';
import type { Mbufs } from './mbuf.js';
import { R_SFBUF_DELAYED, R_SFBUF_DENIED } from './shared.js';

export interface MbufStats {
  mbufCount: number;
  mbufFree: number;
  mbufFailures: number;
  mbufSleeps: number;
  clusterCount: number;
  clusterFree: number;
  clusterLimit: number;
  clusterFailures: number;
  clusterSleeps: number;
  packetCount: number;
  packetFree: number;
  packetFailures: number;
  packetSleeps: number;
  jumbo: { count: number; free: number; limit: number; size: number; failures: number; sleeps: number }[];
  bytesInUse: number;
  bytesInCache: number;
  sfbufsDenied: number;
  sfbufsDelayed: number;
  /** mbufs in use by type (MT_*), summed over the per-CPU slots. */
  types: number[];
}

/** Gather the figures netstat -m prints (mbuf_stats). */
export function mbufStats(mb: Mbufs): MbufStats {
  const m = zoneStats(mb.zMbuf);
  const c = zoneStats(mb.zClust);
  const p = zoneStats(mb.zPack);
  const jz = [mb.zJumbop, mb.zJumbo9, mb.zJumbo16].map((z) => {
    const s = zoneStats(z);
    return { count: s.used, free: s.free, limit: s.limit, size: s.size, failures: s.fails, sleeps: s.sleeps };
  });
  let bytesInUse = m.used * L.MSIZE + c.used * L.MCLBYTES + p.used * L.MSIZE;
  let bytesInCache = m.free * L.MSIZE + c.free * L.MCLBYTES + p.free * L.MSIZE;
  for (const j of jz) {
    bytesInUse += j.count * j.size;
    bytesInCache += j.free * j.size;
  }
  return {
    mbufCount: m.used,
    mbufFree: m.free,
    mbufFailures: m.fails,
    mbufSleeps: m.sleeps,
    clusterCount: c.used,
    clusterFree: c.free,
    clusterLimit: c.limit,
    clusterFailures: c.fails,
    clusterSleeps: c.sleeps,
    packetCount: p.used,
    packetFree: p.free,
    packetFailures: p.fails,
    packetSleeps: p.sleeps,
    jumbo: jz,
    bytesInUse,
    bytesInCache,
    sfbufsDenied: mb.shared.get(R_SFBUF_DENIED),
    sfbufsDelayed: mb.shared.get(R_SFBUF_DELAYED),
    // A sum caught between another CPU's allocation and its free could dip below 0.
    types: mb.typeCounts().map((n) => Math.max(0, n)),
  };
}

/** Names of the mbuf types as FreeBSD 4's netstat -m printed them (mbtypenames). */
const TYPE_NAMES: [number, string][] = [
  [L.MT_DATA, 'data'],
  [L.MT_OOBDATA, 'oob data'],
  [L.MT_CONTROL, 'ancillary data'],
  [L.MT_HEADER, 'packet headers'],
  [L.MT_SONAME, 'socket names and addresses'],
  [L.MT_EXTCONTROL, 'external control data'],
];

export interface NetstatMOptions {
  /**
   * Also print the per-type breakdown after the first line, as FreeBSD 4 did
   * ("\tN mbufs allocated to data"), from the per-CPU type counters; types
   * with no mbufs are left out. Off by default: current FreeBSD prints none.
   */
  byType?: boolean;
}

/** The per-type lines (FreeBSD 4 netstat -m): known names first, then "<mbuf type N>". */
function typeLines(types: readonly number[]): string[] {
  const out: string[] = [];
  const seen = new Set<number>();
  for (const [t, name] of TYPE_NAMES) {
    seen.add(t);
    if (types[t] > 0) out.push(`\t${types[t]} mbufs allocated to ${name}`);
  }
  for (let t = 0; t < types.length; t++) {
    if (!seen.has(t) && types[t] > 0) out.push(`\t${types[t]} mbufs allocated to <mbuf type ${t}>`);
  }
  return out;
}

/** The text of `netstat -m`, line for line as FreeBSD prints it. */
export function netstatM(mb: Mbufs, s: MbufStats = mbufStats(mb), opts: NetstatMOptions = {}): string {
  const [jp, j9, j16] = s.jumbo;
  const k = (b: number): number => Math.floor(b / 1024);
  const lines = [
    `${s.mbufCount + s.packetCount}/${s.mbufFree + s.packetFree}/${s.mbufCount + s.packetCount + s.mbufFree + s.packetFree} mbufs in use (current/cache/total)`,
    `${s.clusterCount - s.packetFree}/${s.clusterFree + s.packetFree}/${s.clusterCount + s.clusterFree}/${s.clusterLimit} mbuf clusters in use (current/cache/total/max)`,
    `${s.packetCount}/${s.packetFree} mbuf+clusters out of packet secondary zone in use (current/cache)`,
    `${jp.count}/${jp.free}/${jp.count + jp.free}/${jp.limit} ${jp.size / 1024}k (page size) jumbo clusters in use (current/cache/total/max)`,
    `${j9.count}/${j9.free}/${j9.count + j9.free}/${j9.limit} 9k jumbo clusters in use (current/cache/total/max)`,
    `${j16.count}/${j16.free}/${j16.count + j16.free}/${j16.limit} 16k jumbo clusters in use (current/cache/total/max)`,
    `${k(s.bytesInUse)}K/${k(s.bytesInCache)}K/${k(s.bytesInUse + s.bytesInCache)}K bytes allocated to network (current/cache/total)`,
    `${s.mbufFailures}/${s.clusterFailures}/${s.packetFailures} requests for mbufs denied (mbufs/clusters/mbuf+clusters)`,
    `${s.mbufSleeps}/${s.clusterSleeps}/${s.packetSleeps} requests for mbufs delayed (mbufs/clusters/mbuf+clusters)`,
    `${jp.sleeps}/${j9.sleeps}/${j16.sleeps} requests for jumbo clusters delayed (4k/9k/16k)`,
    `${jp.failures}/${j9.failures}/${j16.failures} requests for jumbo clusters denied (4k/9k/16k)`,
    `${s.sfbufsDenied} requests for sfbufs denied`,
    `${s.sfbufsDelayed} requests for sfbufs delayed`,
  ];
  if (opts.byType === true) lines.splice(1, 0, ...typeLines(s.types));
  return lines.join('\n') + '\n';
}
