/**
 * The CLI's subcommands. Each registers itself on the commander program;
 * later layers add theirs (netstat -m, netstat -an) by appending a
 * registrar to COMMANDS in main.ts.
 */
import { Command, InvalidArgumentError } from 'commander';
import { runDemo, runTradingWorkload } from './demo.js';
import { runNetDemo, runTapMpDemo } from './netdemo.js';
import { runNetstat } from './netcmds.js';
import { createSystem } from './system.js';
import { vmstatZ } from '../uma/vmstat.js';
import { SysctlError, type SysctlEntry } from '../kern/sysctl/sysctl.js';

export type Registrar = (program: Command) => void;

/** `slabnet packetdrill FILE|DIR ...` (src/packetdrill/cli.ts). */
export { registerPacketdrill } from '../packetdrill/cli.js';

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

/** `slabnet demo`: the main job, UDP request/response between two stacks on the CPUs. */
export const registerNetDemo: Registrar = (program) => {
  program
    .command('demo')
    .description('two network stacks on the CPU workers joined by an in-memory link: a DNS-like UDP server and a load generator, then latency, netstat and vmstat -z and a leak check')
    .option('-s, --seconds <s>', 'how long the load generator runs', positiveNumber, 5)
    .option('-c, --cpus <n>', 'CPU workers', workerCount)
    .option('--clients <n>', 'client sockets of the load generator', workerCount, 4)
    .option('--window <n>', 'queries in flight per client socket', workerCount, 8)
    .option('--tap', 'serve on a multi-queue Linux TAP device instead, one queue per CPU (root)', false)
    .action(async (o: { seconds: number; cpus?: number; clients: number; window: number; tap: boolean }) => {
      if (o.tap) {
        process.exitCode = await runTapMpDemo({ seconds: o.seconds, cpus: o.cpus });
        return;
      }
      process.exitCode = await runNetDemo({ seconds: o.seconds, cpus: o.cpus, clients: o.clients, window: o.window });
    });
};

/** `slabnet netstat -s | -m | -an | -i` on a machine after a short request/response run. */
export const registerNetstat: Registrar = (program) => {
  program
    .command('netstat')
    .description('network statistics of a machine running the stack after a short UDP workload (-s, -m, -i, -a -n)')
    .option('-s', 'protocol statistics (ip, icmp, udp, arp)')
    .option('-m', 'mbuf statistics')
    .option('-i', 'interface counters')
    .option('-a', 'all sockets, servers included (with -n)')
    .option('-n', 'numeric addresses')
    .option('-c, --cpus <n>', 'CPU workers', workerCount, 2)
    .action(async (o: { s?: boolean; m?: boolean; i?: boolean; a?: boolean; n?: boolean; cpus: number }) => {
      if (!o.s && !o.m && !o.i && !o.a) {
        process.stderr.write('netstat: give -s, -m, -i or -an\n');
        process.exitCode = 2;
        return;
      }
      process.exitCode = await runNetstat({ s: o.s ?? false, m: o.m ?? false, i: o.i ?? false, an: o.a ?? false, cpus: o.cpus });
    });
};

/** `slabnet uma-demo`: the UMA trading demo. */
export const registerDemo: Registrar = (program) => {
  program
    .command('uma-demo')
    .description('workers allocate and trade items through shared rings, then vmstat -z and a leak check')
    .option('-s, --seconds <s>', 'how long the workers trade items', positiveNumber, 2)
    .option('-w, --workers <n>', 'worker CPUs', workerCount, 4)
    .option('--debug', 'debug arena: witness, trash fill, use-after-free checks', false)
    .action(async (o: { seconds: number; workers: number; debug: boolean }) => {
      process.exitCode = await runDemo({ seconds: o.seconds, workers: o.workers, debug: o.debug });
    });
};

/** `slabnet vmstat -z`: the zone report of a demo arena after a short workload. */
export const registerVmstat: Registrar = (program) => {
  program
    .command('vmstat')
    .description('zone statistics in FreeBSD vmstat -z format, from a demo arena after a short workload')
    .option('-z', 'UMA zone statistics (the only report so far)')
    .option('-s, --seconds <s>', 'length of the workload run first', positiveNumber, 0.5)
    .option('-w, --workers <n>', 'worker CPUs of that workload', workerCount, 2)
    .action(async (o: { z?: boolean; seconds: number; workers: number }) => {
      if (!o.z) {
        process.stderr.write('vmstat: only -z is supported\n');
        process.exitCode = 2;
        return;
      }
      const sys = createSystem({ ncpus: o.workers + 1 });
      await runTradingWorkload(sys, { seconds: o.seconds, workers: o.workers, progress: false });
      process.stdout.write(vmstatZ(sys.uma));
    });
};

function show(e: SysctlEntry, describe: boolean): string {
  return describe ? `${e.name}: ${e.description}` : `${e.name}: ${e.value}`;
}

/** `slabnet sysctl [-a] [-d] [name[=value] ...]` on a fresh demo arena. */
export const registerSysctl: Registrar = (program) => {
  program
    .command('sysctl')
    .description('read and write sysctl nodes of a demo arena (name, name=value, or -a for all)')
    .argument('[names...]', 'node or subtree names, or name=value to write')
    .option('-a, --all', 'list every node')
    .option('-d, --describe', 'print descriptions instead of values')
    .option('-N, --names', 'print names only')
    .action((names: string[], o: { all?: boolean; describe?: boolean; names?: boolean }) => {
      const sys = createSystem();
      const tree = sys.sysctl;
      const print = (entries: SysctlEntry[]) => {
        for (const e of entries) process.stdout.write((o.names ? e.name : show(e, o.describe ?? false)) + '\n');
      };
      if (o.all || names.length === 0) {
        print(tree.list());
        if (names.length === 0) return;
      }
      for (const arg of names) {
        try {
          const eq = arg.indexOf('=');
          if (eq >= 0) {
            const name = arg.slice(0, eq);
            const before = tree.get(name);
            tree.set(name, arg.slice(eq + 1));
            process.stdout.write(`${name}: ${before} -> ${tree.get(name)}\n`);
          } else {
            print(tree.list(arg));
          }
        } catch (e) {
          if (!(e instanceof SysctlError)) throw e;
          process.stderr.write(`${e.message}\n`);
          process.exitCode = 1;
        }
      }
    });
};
