/**
 * Zone statistics, summed by the reader over every CPU's padded slot (no
 * atomics on the writer's side, so a reading may be a few operations stale).
 * `used` is exact for every CPU; `requests` of another CPU counts its
 * fast-path allocations up to its last slow path, flush or poll (zone.ts,
 * ST_CUR_CNT_WORD); the reading thread's own CPU is folded first.
 */
import { ST_ALLOCS, ST_CUR_BASE_WORD, ST_CUR_CNT_WORD, ST_FAILS, ST_FREES, ST_SLEEPS, ST_X_BASE_WORD, ST_X_CNT_WORD, ST_XDOMAIN, type Zone } from './zone.js';

export interface ZoneStats {
  name: string;
  /** Item size as created. */
  size: number;
  /** Items limit (0 = none). */
  limit: number;
  /** Items allocated and not yet freed. */
  used: number;
  /** Items cached in the zone's buckets plus free items of its keg. */
  free: number;
  /** Successful allocations. */
  requests: number;
  fails: number;
  sleeps: number;
  /** Frees made on a CPU other than the one that allocated the item. */
  xdomain: number;
  /** Items the zone holds from its keg (used + cached). */
  items: number;
  bucketSize: number;
  pages: number;
  limitHits: number;
}

export function zoneStats(zone: Zone): ZoneStats {
  const f64 = zone.arena.f64;
  const i32 = zone.arena.i32;
  let allocs = 0;
  let frees = 0;
  let fails = 0;
  let sleeps = 0;
  let xdomain = 0;
  const n = zone.arena.ncpusMax;
  zone.foldStats();
  for (let cpu = 0; cpu < n; cpu++) {
    const s = zone.statIndex(cpu);
    // Totals plus what the fast paths did since the CPU last folded (zone.ts,
    // ST_CUR_CNT_WORD): net frees into the current bucket, and frees into the
    // cross-free bucket (every one of them an XDOMAIN free).
    const w = s * 2;
    const cross = i32[w + ST_X_CNT_WORD] - i32[w + ST_X_BASE_WORD];
    allocs += f64[s + ST_ALLOCS];
    frees += f64[s + ST_FREES] + (i32[w + ST_CUR_CNT_WORD] - i32[w + ST_CUR_BASE_WORD]) + cross;
    fails += f64[s + ST_FAILS];
    sleeps += f64[s + ST_SLEEPS];
    xdomain += f64[s + ST_XDOMAIN] + cross;
  }
  const used = allocs - frees;
  const items = zone.items;
  return {
    name: zone.name,
    size: zone.keg.size,
    limit: zone.getMaxItems(),
    used,
    free: Math.max(0, items - used) + (zone.secondary ? 0 : zone.keg.freeItems),
    requests: allocs,
    fails,
    sleeps,
    xdomain,
    items,
    bucketSize: zone.bucketSize,
    pages: zone.secondary ? 0 : zone.keg.pagesHeld,
    limitHits: zone.limitHits,
  };
}

/** `used` of every zone by name: a baseline for leak checks. */
export function usedByZone(zones: Zone[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const z of zones) m.set(z.name, zoneStats(z).used);
  return m;
}
