/**
 * The main job around the demos of netdemo.ts: applies `-o name=value`
 * sysctls once the system is up, opens its control socket (so that
 * `slabnet netstat -m`, `top`, `sysctl` attach to it), shows live figures
 * while a --tap run serves (the timed run has its progress bar), and on
 * Ctrl-C (SIGINT) or SIGTERM ends the run early so the summary and the leak
 * check still print; a second signal exits at once.
 */
import { runNetDemo, runTapMpDemo, type DemoHooks } from './netdemo.js';
import { runHttpDemo } from './httpdemo.js';
import { ControlServer } from '../kern/ctl/server.js';
import { controlView } from '../lib/ctl/adapter.js';
import type { CtlSystem } from '../kern/ctl/system.js';
import { SysctlError } from '../kern/sysctl/sysctl.js';
import { mbufStats } from '../kern/mbuf/stats.js';

export interface DemoJobOptions {
  seconds: number;
  cpus?: number;
  clients?: number;
  window?: number;
  tap: boolean;
  /** The UDP (DNS-like) demo instead of the HTTP one. */
  udp?: boolean;
  /** Keep-alive connections of the HTTP load generator. */
  conns?: number;
  /** `name=value` sysctls set before the load starts. */
  sysctls: string[];
  /** Open the control socket (default on). */
  control: boolean;
  /** Its name (default "demo", or "tap" with --tap). */
  name?: string;
  out?: (s: string) => void;
  err?: (s: string) => void;
}

/** Parse -o arguments: name=value each, with a name. */
export function parseSysctlAssignments(list: string[]): { name: string; value: string }[] {
  return list.map((a) => {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new SysctlError('ERR_SLABNET_SYSCTL_EINVAL', a, `-o ${a}: give name=value`);
    return { name: a.slice(0, eq), value: a.slice(eq + 1) };
  });
}

/** The one-line live figures of a running system, from the arena. */
export function liveLine(v: CtlSystem, t0: number, last: { t: number; ipk: number; opk: number }): string {
  const now = performance.now();
  let ipk = 0;
  let opk = 0;
  for (const i of v.interfaces()) {
    ipk += i.counters[0];
    opk += i.counters[4];
  }
  const dt = Math.max(1e-3, (now - last.t) / 1000);
  const rx = Math.round((ipk - last.ipk) / dt);
  const tx = Math.round((opk - last.opk) / dt);
  last.t = now;
  last.ipk = ipk;
  last.opk = opk;
  let udpIn = 0;
  for (const h of v.hosts()) udpIn += v.stats(h.index).udp[0];
  const m = mbufStats(v.mb);
  return `live ${((now - t0) / 1000).toFixed(0)} s: rx ${rx} pkt/s, tx ${tx} pkt/s (${ipk} in, ${opk} out), ${udpIn} UDP datagrams received, clusters ${m.clusterCount - m.packetFree}/${m.clusterLimit}`;
}

/** Run the main job; returns the exit code. */
export async function runDemoJob(o: DemoJobOptions): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s + '\n'));
  const err = o.err ?? ((s: string) => process.stderr.write(s + '\n'));
  let sets: { name: string; value: string }[];
  try {
    sets = parseSysctlAssignments(o.sysctls);
  } catch (e) {
    err(`demo: ${(e as Error).message}`);
    return 2;
  }
  let stopEarly!: () => void;
  const until = new Promise<void>((res) => (stopEarly = res));
  let interrupted = 0;
  let signal = '';
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupted++;
    signal = sig;
    if (interrupted > 1) {
      err('demo: interrupted again, exiting without the summary');
      process.exit(130);
    }
    err(`\ndemo: ${sig === 'SIGINT' ? 'interrupted' : sig}: finishing (summary and leak check follow; Ctrl-C again to quit at once)`);
    stopEarly();
  };
  // SIGTERM too: a shell's background job (cmd &) starts with SIGINT ignored, `kill %1` still works.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let ctl: ControlServer | null = null;
  let live: NodeJS.Timeout | undefined;
  const hooks: DemoHooks = {
    started: async (sys) => {
      const view = controlView(sys);
      for (const { name, value } of sets) {
        const old = view.sysctl.get(name);
        view.sysctl.set(name, value);
        out(`${name}: ${old} -> ${view.sysctl.get(name)}`);
      }
      if (o.control) {
        ctl = await ControlServer.open(view, { name: o.name ?? (o.tap ? 'tap' : 'demo') });
        out(`control socket ${ctl.path} (slabnet netstat -m, vmstat -z, sysctl, top attach to it)`);
      }
      if (o.tap) {
        const t0 = performance.now();
        const last = { t: t0, ipk: 0, opk: 0 };
        const tty = process.stderr.isTTY === true;
        let k = 0;
        live = setInterval(() => {
          const line = liveLine(view, t0, last);
          if (tty) process.stderr.write(`\r\x1b[K${line}`);
          else if (++k % 5 === 0) err(line);
        }, 1000);
      }
    },
    stopping: async () => {
      if (live !== undefined) {
        clearInterval(live);
        if (process.stderr.isTTY) process.stderr.write('\n');
      }
      await (ctl as ControlServer | null)?.close();
    },
  };
  try {
    if (o.tap) return await runTapMpDemo({ seconds: o.seconds, cpus: o.cpus, out, until, hooks });
    if (o.udp === true) return await runNetDemo({ seconds: o.seconds, cpus: o.cpus, clients: o.clients, window: o.window, out, until, hooks });
    return await runHttpDemo({ seconds: o.seconds, cpus: o.cpus, conns: o.conns, out, until, hooks });
  } catch (e) {
    if (e instanceof SysctlError) {
      err(`demo: -o ${e.message}`);
      return 2;
    }
    throw e;
  } finally {
    if (live !== undefined) clearInterval(live);
    await (ctl as ControlServer | null)?.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    if (interrupted > 0) out(`demo: stopped by ${signal}`);
  }
}
