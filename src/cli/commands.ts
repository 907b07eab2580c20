/**
 * The CLI's subcommands. Each registers itself on the commander program;
 * later layers add theirs by appending a registrar to COMMANDS in main.ts.
 * The tools that attach to a running system live in ctlcmds.ts and top.ts.
 */
import { Command, InvalidArgumentError } from 'commander';
import { runDemo } from './demo.js';
import { runDemoJob } from './demojob.js';

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

/** `slabnet demo`: the main job, HTTP over slabnet TCP between two stacks on the CPUs (--udp: the DNS-like UDP demo). */
export const registerNetDemo: Registrar = (program) => {
  program
    .command('demo')
    .description('two network stacks on the CPU workers joined by an in-memory link: Node\'s http.createServer on slabnet TCP and a keep-alive HTTP load generator (--udp: a DNS-like UDP server and its load generator), then requests/s, latency, netstat and vmstat -z and a leak check; serves a control socket for the tools meanwhile, Ctrl-C ends it early')
    .option('-s, --seconds <s>', 'how long the load generator runs', positiveNumber, 5)
    .option('-c, --cpus <n>', 'CPU workers', workerCount)
    .option('--conns <n>', 'keep-alive HTTP connections of the load generator', workerCount, 8)
    .option('--udp', 'the DNS-like UDP demo instead of HTTP', false)
    .option('--clients <n>', 'with --udp: client sockets of the load generator', workerCount, 4)
    .option('--window <n>', 'with --udp: queries in flight per client socket', workerCount, 8)
    .option('--tap', 'serve on a multi-queue Linux TAP device instead, one queue per CPU (root)', false)
    .option('-o, --sysctl <name=value>', 'set a sysctl once the system is up (repeatable)', (v: string, a: string[]) => [...a, v], [] as string[])
    .option('--name <name>', 'name of the control socket (default demo, or tap with --tap)')
    .option('--no-control', 'do not open the control socket')
    .action(async (o: { seconds: number; cpus?: number; conns: number; udp: boolean; clients: number; window: number; tap: boolean; sysctl: string[]; name?: string; control: boolean }) => {
      process.exitCode = await runDemoJob({ seconds: o.seconds, cpus: o.cpus, conns: o.conns, udp: o.udp, clients: o.clients, window: o.window, tap: o.tap, sysctls: o.sysctl, control: o.control, name: o.name });
    });
};

// netstat, vmstat and sysctl attach to a running system (ctlcmds.ts).
export { registerNetstat, registerSysctl, registerVmstat } from './ctlcmds.js';

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
