/**
 * `slabnet packetdrill FILE|DIR ... [--json] [--expected-failures FILE]`:
 * run packetdrill scripts against the stack on virtual time and report.
 * Exit status 0 when every script passed (or, with --expected-failures,
 * when exactly the listed scripts failed), 1 otherwise, 2 for bad usage.
 */
import type { Command } from 'commander';
import { statSync, writeFileSync } from 'node:fs';
import { collectScripts, createEnv, runFile, type RunResult } from './run.js';
import { checkExpectations, formatExpectedFailures, formatJson, formatText, groupCounts, loadExpectedFailures } from './report.js';

interface Opts {
  json?: boolean;
  expectedFailures?: string;
  writeExpectedFailures?: string;
  root?: string;
  verbose?: boolean;
  trace?: boolean;
  define: string[];
}

/** Run the scripts the paths name; returns the exit status. */
export function runPacketdrillCli(paths: string[], o: Opts): number {
  let files: string[];
  try {
    files = collectScripts(paths);
  } catch (e) {
    process.stderr.write(`packetdrill: ${(e as Error).message}\n`);
    return 2;
  }
  const env = createEnv();
  const defines = new Set(o.define);
  const trace = o.trace ? (l: string) => process.stderr.write(l + '\n') : undefined;
  const results: RunResult[] = files.map((f) => {
    if (trace) trace(`# ${f}`);
    return runFile(f, env, { defines, trace });
  });
  const root = o.root ?? (paths.length === 1 && statSync(paths[0]).isDirectory() ? paths[0] : process.cwd());
  let ok = results.every((r) => r.pass);
  let extra: Record<string, unknown> = { groups: Object.fromEntries(groupCounts(root, results)) };
  let tail = '';
  if (o.expectedFailures !== undefined) {
    const c = checkExpectations(root, results, loadExpectedFailures(o.expectedFailures));
    ok = c.unexpectedFailures.length === 0 && c.unexpectedPasses.length === 0;
    extra = { ...extra, unexpectedFailures: c.unexpectedFailures.map((r) => r.path), unexpectedPasses: c.unexpectedPasses, missing: c.missing };
    for (const r of c.unexpectedFailures) tail += `unexpected failure: ${r.path}\n`;
    for (const k of c.unexpectedPasses) tail += `unexpected pass (remove it from the list): ${k}\n`;
    for (const k of c.missing) tail += `listed but not run: ${k}\n`;
  }
  if (o.writeExpectedFailures !== undefined) writeFileSync(o.writeExpectedFailures, formatExpectedFailures(root, results));
  if (o.json) process.stdout.write(formatJson(results, extra) + '\n');
  else {
    let s = formatText(results, { verbose: o.verbose });
    for (const [g, c] of groupCounts(root, results)) s += `  ${g}: ${c.pass}/${c.total}\n`;
    process.stdout.write(s + tail);
  }
  return ok ? 0 : 1;
}

/** Register the subcommand on the CLI program. */
export function registerPacketdrill(program: Command): void {
  program
    .command('packetdrill')
    .description('run packetdrill scripts (files or directories of .pkt) against the stack on a manual clock')
    .argument('<paths...>', 'script files or directories')
    .option('--json', 'JSON report')
    .option('--expected-failures <file>', 'scripts expected to fail (one per line, relative to the root, then a reason)')
    .option('--write-expected-failures <file>', 'write the failing scripts, each with its first error as the reason, to file')
    .option('--root <dir>', 'directory the expected-failures paths are relative to (default: the one directory given, else .)')
    .option('-v, --verbose', 'list passing scripts and notes too')
    .option('--trace', 'print every packet injected and sniffed, with live values, on stderr')
    .option('-D, --define <name>', 'define NAME for #ifdef (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .action((paths: string[], o: Opts) => {
      process.exitCode = runPacketdrillCli(paths, o);
    });
}
