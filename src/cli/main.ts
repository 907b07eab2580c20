#!/usr/bin/env node
/**
 * The slabnet command line: `slabnet demo` (the main job: UDP between two
 * stacks), `slabnet uma-demo`, `slabnet netstat -s|-m|-i|-an`, `slabnet vmstat -z`,
 * `slabnet sysctl [-a] [name[=value]]`, `arp -a`, `sockstat`, `top`, `metrics`
 * (these attach to a running system's control socket). Subcommands live in commands.ts; add
 * a registrar to COMMANDS to add one.
 */
import { Command } from 'commander';
import { TOOL_COMMANDS } from './ctlcmds.js';
import { registerTop } from './top.js';
import { registerDemo, registerNetDemo, registerNetstat, registerPacketdrill, registerSysctl, registerVmstat, type Registrar } from './commands.js';

export const COMMANDS: Registrar[] = [registerNetDemo, registerDemo, registerNetstat, registerVmstat, registerSysctl, registerPacketdrill];
// The tools that attach to a running system's control socket (ctlcmds.ts, top.ts).
COMMANDS.push(...TOOL_COMMANDS, registerTop);

/** The commander program with every subcommand registered. */
export function buildProgram(): Command {
  const program = new Command();
  program.name('slabnet').description("FreeBSD's UMA/mbuf memory and a DragonFly-style MP network stack over one SharedArrayBuffer");
  for (const register of COMMANDS) register(program);
  return program;
}

// `slabnet ... | head` closes stdout early: that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

buildProgram()
  .parseAsync(process.argv)
  .catch((e: unknown) => {
    process.stderr.write(`slabnet: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  });
