/**
 * The BSD tools on a running system: netstat, vmstat, sysctl, arp,
 * sockstat, tcpdrop, pcap, metrics and `systems`, each a client of the
 * control socket of the system -N names (by name or pid; not needed when
 * only one runs). With none running they say so and exit 1. The old
 * demonstration on a fresh arena stays behind --local (netstat, vmstat,
 * sysctl). Registrars for main.ts's COMMANDS.
 */
import { Command, InvalidArgumentError } from 'commander';
import { attach, CtlPickError, CtlRemoteError, CtlTimeoutError, listControlSockets, ctlDir, type CtlClient } from '../lib/ctl/client.js';
import { runNetstat } from './netcmds.js';
import { runTradingWorkload } from './demo.js';
import { createSystem } from './system.js';
import { vmstatZ } from '../uma/vmstat.js';
import { SysctlError, type SysctlEntry } from '../kern/sysctl/sysctl.js';
import type { Registrar } from './commands.js';

const SYSTEM_HELP = 'the running system to attach to, by name or pid (needed only when several run)';

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a positive number');
  return n;
}

function workerCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 32) throw new InvalidArgumentError('must be an integer from 1 to 32');
  return n;
}

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const err = (s: string): void => void process.stderr.write(s.endsWith('\n') ? s : s + '\n');

/**
 * Attach to the system `which` names, run `fn` with a client, close it.
 * Returns the exit code: fn's, or 1 when no system could be chosen or a
 * request failed (the message goes to stderr).
 */
export async function withSystem(tool: string, which: string | undefined, fn: (c: CtlClient) => Promise<number | void>): Promise<number> {
  let client: CtlClient | undefined;
  try {
    ({ client } = await attach(which));
    client.timeoutMs = Number(process.env.SLABNET_CTL_TIMEOUT_MS ?? 15_000);
    return (await fn(client)) ?? 0;
  } catch (e) {
    if (e instanceof CtlPickError || e instanceof CtlTimeoutError) err(`${tool}: ${e.message}`);
    else if (e instanceof CtlRemoteError) err(`${tool}: ${e.message} (${e.code})`);
    else if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED' || (e as NodeJS.ErrnoException).code === 'ENOENT') err(`${tool}: the system's control socket does not answer (it is stopping?)`);
    else throw e;
    return 1;
  } finally {
    client?.close();
  }
}

/** `netstat`: -s [-p proto], -m, -i, -an, -r of a running system. */
export const registerNetstat: Registrar = (program) => {
  program
    .command('netstat')
    .description('network statistics of a running system (-s [-p proto], -m, -i, -a -n, -r); --local runs a short workload on a fresh arena instead')
    .option('-s', 'protocol statistics (ether, arp, ip, icmp, udp, tcp)')
    .option('-p <proto>', 'only this protocol (with -s; alone it implies -s)')
    .option('-m', 'mbuf statistics')
    .option('-i', 'interface counters')
    .option('-a', 'all sockets, servers included (with -n)')
    .option('-n', 'numeric addresses')
    .option('-r', 'routing tables')
    .option('-N, --system <name|pid>', SYSTEM_HELP)
    .option('--local', 'demonstration: a fresh arena after a 16-datagram workload, not a running system')
    .option('-c, --cpus <n>', 'CPU workers (--local only)', workerCount, 2)
    .action(async (o: { s?: boolean; p?: string; m?: boolean; i?: boolean; a?: boolean; n?: boolean; r?: boolean; system?: string; local?: boolean; cpus: number }) => {
      const s = (o.s ?? false) || o.p !== undefined;
      if (!s && !o.m && !o.i && !o.a && !o.r) {
        err('netstat: give -s, -p proto, -m, -i, -an or -r');
        process.exitCode = 2;
        return;
      }
      if (o.local) {
        process.exitCode = await runNetstat({ s, m: o.m ?? false, i: o.i ?? false, an: o.a ?? false, cpus: o.cpus });
        return;
      }
      process.exitCode = await withSystem('netstat', o.system, async (c) => {
        const reports: [string, Record<string, unknown>][] = [];
        if (s) reports.push(['s', o.p === undefined ? {} : { proto: o.p }]);
        if (o.i) reports.push(['i', {}]);
        if (o.a) reports.push(['an', {}]);
        if (o.r) reports.push(['r', {}]);
        if (o.m) reports.push(['m', {}]);
        for (const [report, extra] of reports) out((await c.request<{ text: string }>('netstat', { report, ...extra })).text);
      });
    });
};

/** `vmstat -z` of a running system. */
export const registerVmstat: Registrar = (program) => {
  program
    .command('vmstat')
    .description('zone statistics of a running system in FreeBSD vmstat -z format; --local runs a short workload on a fresh arena instead')
    .option('-z', 'UMA zone statistics (the only report so far)')
    .option('-N, --system <name|pid>', SYSTEM_HELP)
    .option('--local', 'demonstration: a fresh arena after a short trading workload')
    .option('-s, --seconds <s>', 'length of the --local workload', positiveNumber, 0.5)
    .option('-w, --workers <n>', 'worker CPUs of the --local workload', workerCount, 2)
    .action(async (o: { z?: boolean; system?: string; local?: boolean; seconds: number; workers: number }) => {
      if (!o.z) {
        err('vmstat: only -z is supported');
        process.exitCode = 2;
        return;
      }
      if (o.local) {
        const sys = createSystem({ ncpus: o.workers + 1 });
        await runTradingWorkload(sys, { seconds: o.seconds, workers: o.workers, progress: false });
        process.stdout.write(vmstatZ(sys.uma));
        return;
      }
      process.exitCode = await withSystem('vmstat', o.system, async (c) => out((await c.request<{ text: string }>('vmstat', { z: true })).text));
    });
};

interface SysctlOpts {
  all?: boolean;
  describe?: boolean;
  namesOnly?: boolean;
  system?: string;
  local?: boolean;
}

function show(e: Pick<SysctlEntry, 'name' | 'value' | 'description'>, o: SysctlOpts): string {
  if (o.namesOnly) return e.name;
  return o.describe ? `${e.name}: ${e.description}` : `${e.name}: ${e.value}`;
}

/** The sysctl operations, against a running system or a local tree. */
interface SysctlBackend {
  list(prefix: string): Promise<SysctlEntry[]>;
  set(name: string, value: string): Promise<{ old: unknown; new: unknown }>;
}

async function sysctlRun(names: string[], o: SysctlOpts, b: SysctlBackend): Promise<number> {
  let code = 0;
  if (o.all || names.length === 0) {
    for (const e of await b.list('')) out(show(e, o));
    if (names.length === 0) return 0;
  }
  for (const arg of names) {
    try {
      const eq = arg.indexOf('=');
      if (eq >= 0) {
        const name = arg.slice(0, eq);
        const r = await b.set(name, arg.slice(eq + 1));
        out(`${name}: ${r.old} -> ${r.new}`);
      } else {
        for (const e of await b.list(arg)) out(show(e, o));
      }
    } catch (e) {
      if (e instanceof SysctlError || e instanceof CtlRemoteError) {
        err(e.message);
        code = 1;
      } else throw e;
    }
  }
  return code;
}

/** `sysctl [-a] [-d] [name[=value] ...]` of a running system (writes reach its CPUs). */
export const registerSysctl: Registrar = (program) => {
  program
    .command('sysctl')
    .description('read and write sysctl nodes of a running system (name, name=value, or -a for all); --local uses a fresh demo arena')
    .argument('[names...]', 'node or subtree names, or name=value to write')
    .option('-a, --all', 'list every node')
    .option('-d, --describe', 'print descriptions instead of values')
    .option('--names-only', 'print names only (FreeBSD sysctl -N; here -N chooses the system)')
    .option('-N, --system <name|pid>', SYSTEM_HELP)
    .option('--local', 'a fresh demo arena of this process (writes are lost when it exits)')
    .action(async (names: string[], o: SysctlOpts) => {
      if (o.local) {
        const tree = createSystem().sysctl;
        process.exitCode = await sysctlRun(names, o, {
          list: async (p) => tree.list(p),
          set: async (n, v) => {
            const old = tree.get(n);
            tree.set(n, v);
            return { old, new: tree.get(n) };
          },
        });
        return;
      }
      process.exitCode = await withSystem('sysctl', o.system, (c) =>
        sysctlRun(names, o, {
          list: async (prefix) => (await c.request<{ entries: SysctlEntry[] }>('sysctl.list', { prefix })).entries,
          set: (name, value) => c.request('sysctl.set', { name, value }),
        }),
      );
    });
};

/** `arp -a`. */
export const registerArp: Registrar = (program) => {
  program
    .command('arp')
    .description("the ARP cache of a running system (CPU 0's table; the other CPUs mirror it)")
    .option('-a', 'all entries (the only form)')
    .option('-n', 'numeric (always)')
    .option('-N, --system <name|pid>', SYSTEM_HELP)
    .action(async (o: { a?: boolean; system?: string }) => {
      if (!o.a) {
        err('arp: only -a is supported');
        process.exitCode = 2;
        return;
      }
      process.exitCode = await withSystem('arp', o.system, async (c) => {
        const t = (await c.request<{ text: string }>('arp')).text;
        if (t !== '') out(t);
      });
    });
};

/** `sockstat [-4]`. */
export const registerSockstat: Registrar = (program) => {
  program
    .command('sockstat')
    .description('the sockets of a running system (every CPU\'s PCB table)')
    .option('-4', 'IPv4 sockets (all there are)')
    .option('-N, --system <name|pid>', SYSTEM_HELP)
    .action(async (o: { system?: string }) => {
      process.exitCode = await withSystem('sockstat', o.system, async (c) => out((await c.request<{ text: string }>('sockstat')).text));
    });
};

/** `tcpdrop laddr lport faddr fport`, `tcpdrop laddr:lport faddr:fport`, `-a` (all), `-l` (list as commands). */
export const registerTcpdrop: Registrar = (program) => {
  program
    .command('tcpdrop')
    .description('drop TCP connections of a running system (tcpdrop(8))')
    .argument('[addresses...]', 'local-address local-port foreign-address foreign-port (or local:port foreign:port)')
    .option('-a', 'drop every connection (listeners stay)')
    .option('-l', 'list the connections as tcpdrop commands')
    .option('-N, --system <name|pid>', SYSTEM_HELP)
    .action(async (addrs: string[], o: { a?: boolean; l?: boolean; system?: string }) => {
      let args: Record<string, unknown> | null = null;
      if (o.a) args = { all: true };
      else if (addrs.length === 4) args = { local: `${addrs[0]} ${addrs[1]}`, foreign: `${addrs[2]} ${addrs[3]}` };
      else if (addrs.length === 2) args = { local: addrs[0], foreign: addrs[1] };
      if (args === null && !o.l) {
        err('usage: slabnet tcpdrop local-address local-port foreign-address foreign-port | -a | -l');
        process.exitCode = 2;
        return;
      }
      process.exitCode = await withSystem('tcpdrop', o.system, async (c) => {
        if (o.l) {
          const an = await c.request<{ tcp: { laddr: number; lport: number; faddr: number; fport: number; state: number }[] }>('netstat', { report: 'an' });
          const ip = (a: number): string => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');
          for (const t of an.tcp) if (t.faddr !== 0) out(`tcpdrop ${ip(t.laddr)} ${t.lport} ${ip(t.faddr)} ${t.fport}`);
          return;
        }
        const r = await c.request<{ text: string }>('tcpdrop', args!);
        if (r.text !== '') out(r.text);
      });
    });
};

/** `pcap start|stop`: capture an interface of a running system to a file. */
export const registerPcap: Registrar = (program) => {
  program
    .command('pcap')
    .description('start or stop a capture of an interface of a running system (every CPU, merged into one pcap file at stop)')
    .argument('<action>', 'start or stop')
    .option('-i, --interface <name>', 'interface (needed when the system has several; see netstat -i)')
    .option('-w, --write <file>', 'capture file (start)')
    .option('-s, --snaplen <n>', 'bytes of each packet to keep', (v) => Number(v))
    .option('-N, --system <name|pid>', SYSTEM_HELP)
    .action(async (action: string, o: { interface?: string; write?: string; snaplen?: number; system?: string }) => {
      if (action !== 'start' && action !== 'stop') {
        err('pcap: the action is start or stop');
        process.exitCode = 2;
        return;
      }
      if (action === 'start' && o.write === undefined) {
        err('pcap start: give -w file');
        process.exitCode = 2;
        return;
      }
      process.exitCode = await withSystem('pcap', o.system, async (c) => {
        const args: Record<string, unknown> = {};
        if (o.interface !== undefined) args.interface = o.interface;
        if (action === 'start') {
          args.path = (await import('node:path')).resolve(o.write!);
          if (o.snaplen !== undefined) args.snaplen = o.snaplen;
          const r = await c.request<{ interface: string; path: string }>('pcap.start', args);
          out(`capturing ${r.interface} to ${r.path}`);
        } else {
          const r = await c.request<{ interface: string; path: string; packets: number }>('pcap.stop', args);
          out(`${r.packets} packets captured on ${r.interface} in ${r.path}`);
        }
      });
    });
};

/** `metrics`: the Prometheus text of a running system. */
export const registerMetrics: Registrar = (program) => {
  program
    .command('metrics')
    .description('every counter of a running system in the Prometheus text format')
    .option('-N, --system <name|pid>', SYSTEM_HELP)
    .action(async (o: { system?: string }) => {
      process.exitCode = await withSystem('metrics', o.system, async (c) => void process.stdout.write((await c.request<{ text: string }>('metrics')).text));
    });
};

/** `systems`: the running systems of this user. */
export const registerSystems: Registrar = (program) => {
  program
    .command('systems')
    .description('list the running slabnet systems (their control sockets)')
    .action(() => {
      const all = listControlSockets();
      if (all.length === 0) {
        err(`no running slabnet system (no control socket in ${ctlDir()})`);
        process.exitCode = 1;
        return;
      }
      out(`${'NAME'.padEnd(20)} ${'PID'.padStart(7)}  SOCKET`);
      for (const s of all) out(`${s.name.padEnd(20)} ${String(s.pid).padStart(7)}  ${s.path}`);
    });
};

/** Every tool command, for main.ts. */
export const TOOL_COMMANDS: Registrar[] = [registerArp, registerSockstat, registerTcpdrop, registerPcap, registerMetrics, registerSystems];

export type { Command };
