/**
 * `vmstat -z`: the zone report in FreeBSD's text format (usr.bin/vmstat,
 * domemstat_zone). Column widths as FreeBSD prints them:
 *
 *   header  "%-20s %6s %6s %8s %8s %8s %8s %4s %4s\n"
 *           ITEM SIZE LIMIT USED FREE REQ FAIL SLEEP XDOMAIN
 *   row     "%-20s %6ju, %6ju,%8ju,%8ju,%8ju,%4ju,%4ju,%4ju\n"
 *           "name:" size limit used free requests fail sleep xdomain
 *
 * A name longer than 19 characters pushes its row to the right, as printf does.
 * Zones are listed in creation order (UMA's own zones first, as FreeBSD
 * lists "UMA Kegs", "UMA Zones", ... first).
 */
import type { Uma } from './uma.js';
import { zoneStats, type ZoneStats } from './stats.js';

/** Right-align (printf %Nd / %Ns). */
function r(v: number | string, w: number): string {
  return String(v).padStart(w);
}

/** The header line (without newline). */
export const VMSTAT_Z_HEADER =
  `${'ITEM'.padEnd(20)} ${r('SIZE', 6)} ${r('LIMIT', 6)} ${r('USED', 8)} ${r('FREE', 8)} ${r('REQ', 8)} ${r('FAIL', 8)} ${r('SLEEP', 4)} ${r('XDOMAIN', 4)}`;

/** One zone's row (without newline). Counters are whole numbers; negatives (a racy read) print as 0. */
export function formatVmstatRow(s: ZoneStats): string {
  const u = (x: number): number => (x > 0 ? Math.floor(x) : 0);
  return (
    `${(s.name + ':').padEnd(20)} ${r(u(s.size), 6)}, ${r(u(s.limit), 6)},${r(u(s.used), 8)},` +
    `${r(u(s.free), 8)},${r(u(s.requests), 8)},${r(u(s.fails), 4)},${r(u(s.sleeps), 4)},${r(u(s.xdomain), 4)}`
  );
}

/** The whole report for a list of zone statistics, newline-terminated. */
export function formatVmstatZ(rows: readonly ZoneStats[]): string {
  let out = VMSTAT_Z_HEADER + '\n';
  for (const s of rows) out += formatVmstatRow(s) + '\n';
  return out;
}

/**
 * `vmstat -z` of every live zone of the arena, read from this thread. Takes
 * no lock: counters are summed from the per-CPU slots and may be a few
 * operations stale while other CPUs run.
 */
export function vmstatZ(uma: Uma): string {
  return formatVmstatZ(uma.allZones().map(zoneStats));
}
