/**
 * `slabnet top`: a live view of a running system in the spirit of
 * systat -vmstat / -ifstat, refreshed every second over the control socket
 * ("stats" op): per-CPU load of the protocol threads (busy fraction,
 * messages/s), per-interface packets and bits per second, zone use against
 * limits, mbufs and clusters against kern.ipc.nmbclusters, sockets by state
 * and drops by reason. q (or Ctrl-C) quits. renderTop is pure (tests call
 * it); runTop owns the terminal.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { ZoneStats } from '../uma/stats.js';
import type { MbufStats } from '../kern/mbuf/stats.js';
import type { CtlCpuLoad } from '../kern/ctl/system.js';
import { withSystem } from './ctlcmds.js';
import type { CtlClient } from '../lib/ctl/client.js';

/** What the "stats" op returns (ops.ts snapshot). */
export interface TopSnapshot {
  time: number;
  ncpus: number;
  cpus: CtlCpuLoad[];
  interfaces: { name: string; counters: Record<string, number> }[];
  zones: ZoneStats[];
  mbuf: MbufStats;
  nmbclusters: number;
  drops: Record<string, number>;
  sockets?: Record<string, number>;
}

export interface TopMeta {
  name: string;
  pid: number;
  started: number;
}

function bar(frac: number, width: number): string {
  const f = Math.max(0, Math.min(1, Number.isFinite(frac) ? frac : 0));
  const n = Math.round(f * width);
  return '[' + '#'.repeat(n) + ' '.repeat(width - n) + ']';
}

/** 1234567 -> "1.2M" (SI, as systat prints rates). */
export function si(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
  if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
  if (a >= 1e4) return (v / 1e3).toFixed(1) + 'K';
  return String(Math.round(v));
}

const r = (v: string | number, w: number): string => String(v).padStart(w);
const l = (v: string, w: number): string => (v.length > w ? v.slice(0, w) : v.padEnd(w));

/** Internal UMA zones are not interesting to watch. */
const HIDDEN = /^(UMA |lwkt |mp machine|net stats)/;

/** The screen for snapshot `cur` with rates against `prev` (null on the first frame). */
export function renderTop(meta: TopMeta, prev: TopSnapshot | null, cur: TopSnapshot, width = 80, height = 40): string {
  const dt = prev === null ? 0 : Math.max(1e-3, (cur.time - prev.time) / 1000);
  const rate = (a: number, b: number | undefined): number => (prev === null || b === undefined ? 0 : Math.max(0, (a - b) / dt));
  const lines: string[] = [];
  const clock = new Date(cur.time).toISOString().slice(11, 19);
  const up = ((cur.time - meta.started) / 1000).toFixed(0);
  const head = `slabnet top: ${meta.name} (pid ${meta.pid}), ${cur.ncpus} CPUs, up ${up} s`;
  lines.push(head + ' '.repeat(Math.max(1, width - head.length - clock.length)) + clock);
  lines.push('');
  const bw = Math.max(10, Math.min(30, width - 40));
  lines.push(`${'CPU'.padEnd(4)}${l('busy', bw + 9)} ${r('msgs/s', 10)} ${r('sleeps/s', 9)}`);
  for (const c of cur.cpus) {
    const p = prev?.cpus.find((x) => x.cpu === c.cpu);
    const busy = prev === null || p === undefined ? 0 : (c.busyUs - p.busyUs) / 1e6 / dt;
    lines.push(`${r(c.cpu, 3)} ${bar(busy, bw)} ${r((busy * 100).toFixed(1), 5)}% ${r(si(rate(c.handled, p?.handled)), 10)} ${r(si(rate(c.sleeps, p?.sleeps)), 9)}`);
  }
  lines.push('');
  lines.push(`${l('Interface', 14)}${r('rx pps', 10)}${r('tx pps', 10)}${r('rx bps', 10)}${r('tx bps', 10)}${r('in', 12)}${r('out', 12)}`);
  for (const i of cur.interfaces) {
    const p = prev?.interfaces.find((x) => x.name === i.name)?.counters;
    const c = i.counters;
    lines.push(
      `${l(i.name, 14)}${r(si(rate(c.ipackets, p?.ipackets)), 10)}${r(si(rate(c.opackets, p?.opackets)), 10)}${r(si(8 * rate(c.ibytes, p?.ibytes)), 10)}${r(si(8 * rate(c.obytes, p?.obytes)), 10)}${r(c.ipackets, 12)}${r(c.opackets, 12)}`,
    );
  }
  lines.push('');
  const m = cur.mbuf;
  const clusters = m.clusterCount - m.packetFree;
  const max = cur.nmbclusters;
  lines.push(
    `mbufs ${m.mbufCount + m.packetCount} in use, ${m.mbufFree + m.packetFree} cached   clusters ${clusters}/${max === 0 ? 'unlimited' : max} ${max > 0 ? bar(clusters / max, 20) : ''}   denied ${m.mbufFailures}/${m.clusterFailures}/${m.packetFailures}`,
  );
  lines.push('');
  lines.push(`${l('Zone', 20)} ${l('use', 22)} ${r('used', 8)} ${r('free', 8)} ${r('limit', 8)} ${r('req/s', 8)} ${r('fail', 6)}`);
  const zones = cur.zones.filter((z) => !HIDDEN.test(z.name) && (z.used > 0 || z.limit > 0 || z.requests > 0));
  zones.sort((a, b) => b.used - a.used || (a.name < b.name ? -1 : 1));
  const room = Math.max(3, height - lines.length - 6);
  for (const z of zones.slice(0, room)) {
    const p = prev?.zones.find((x) => x.name === z.name);
    const frac = z.limit > 0 ? z.used / z.limit : z.used / Math.max(1, z.used + z.free);
    lines.push(`${l(z.name, 20)} ${bar(frac, 20)} ${r(z.used, 8)} ${r(z.free, 8)} ${r(z.limit === 0 ? '-' : z.limit, 8)} ${r(si(rate(z.requests, p?.requests)), 8)} ${r(z.fails, 6)}`);
  }
  lines.push('');
  if (cur.sockets !== undefined) lines.push('Sockets: ' + Object.entries(cur.sockets).map(([k, v]) => `${k} ${v}`).join('   '));
  const drops = Object.entries(cur.drops).filter(([, v]) => v > 0);
  lines.push('Drops: ' + (drops.length === 0 ? 'none' : drops.map(([k, v]) => `${k} ${v}`).join('  ')));
  lines.push('');
  lines.push('q: quit');
  return lines.map((x) => (x.length > width ? x.slice(0, width) : x)).join('\n');
}

export interface TopOptions {
  system?: string;
  interval: number;
  /** Frames to draw before exiting (0: until q). */
  iterations: number;
}

/** One snapshot. */
function snap(c: CtlClient): Promise<TopSnapshot> {
  return c.request<TopSnapshot>('stats', { sockets: true });
}

/** Run top against the chosen system; returns the exit code. */
export async function runTop(o: TopOptions): Promise<number> {
  return withSystem('top', o.system, async (c) => {
    const hello = await c.request<TopMeta>('hello');
    const tty = process.stdout.isTTY === true;
    let prev: TopSnapshot | null = null;
    let frames = 0;
    let quit!: () => void;
    const done = new Promise<void>((res) => (quit = res));
    const onKey = (d: Buffer): void => {
      if (d.includes(0x71) || d.includes(0x51) || d.includes(0x03)) quit(); // q, Q, Ctrl-C
    };
    if (tty) {
      process.stdout.write('\x1b[?1049h\x1b[?25l'); // alternate screen, hide cursor
      if (process.stdin.isTTY) process.stdin.setRawMode(true);
      process.stdin.on('data', onKey);
      process.stdin.resume();
    }
    process.once('SIGINT', quit);
    let failure: Error | null = null;
    const frame = async (): Promise<void> => {
      const cur = await snap(c);
      const screen = renderTop(hello, prev, cur, process.stdout.columns ?? 100, process.stdout.rows ?? 40);
      process.stdout.write(tty ? `\x1b[H\x1b[2J${screen}` : `${screen}\n\n`);
      prev = cur;
      frames++;
      if (o.iterations > 0 && frames >= o.iterations) quit();
    };
    const timer = setInterval(() => void frame().catch((e: Error) => ((failure = e), quit())), o.interval * 1000);
    await frame().catch((e: Error) => ((failure = e), quit()));
    await done;
    clearInterval(timer);
    process.off('SIGINT', quit);
    if (tty) {
      process.stdin.off('data', onKey);
      if (process.stdin.isTTY) process.stdin.setRawMode(false);
      process.stdin.pause();
      process.stdout.write('\x1b[?25h\x1b[?1049l');
    }
    if (failure !== null) throw failure;
    return 0;
  });
}

export const registerTop = (program: Command): void => {
  program
    .command('top')
    .description('live view of a running system: CPU load, interface rates, zones, mbufs, sockets, drops (q quits)')
    .option('-N, --system <name|pid>', 'the running system to attach to, by name or pid (needed only when several run)')
    .option('-s, --interval <s>', 'seconds between refreshes', (v) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0.1) throw new InvalidArgumentError('must be at least 0.1');
      return n;
    }, 1)
    .option('-n, --iterations <n>', 'frames to draw, then exit (0: until q)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
      return n;
    }, 0)
    .action(async (o: TopOptions) => {
      process.exitCode = await runTop(o);
    });
};
