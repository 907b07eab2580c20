#!/usr/bin/env node
/**
 * Benchmark runner: `node dist/bench/run.js [suite...] [--quick] [--json] [--case=SUBSTR]...`
 * (`npm run bench -- uma --quick`). Runs the named suites (all known suites
 * when none is named), prints a table, and with --json prints the results as
 * one JSON array on the last line (conventions: ../shared/BENCHMARKS.md).
 *
 * --case=SUBSTR keeps only the cases whose names contain SUBSTR (case-
 * insensitive; repeatable): suites that know their case names skip the
 * rest (tcp does), and the results of the others are filtered.
 *
 * Suites are `src/bench/<suite>.ts` modules exporting `run: Suite`; they are
 * imported dynamically, and a suite whose module does not exist yet is
 * skipped with a note on stderr.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { wanted, type BenchOptions, type BenchResult, type Suite } from './harness.js';

export const SUITES = ['uma', 'mbuf', 'mp', 'net', 'tcp'] as const;

export interface RunArgs {
  suites: string[];
  quick: boolean;
  json: boolean;
  /** --case=SUBSTR filters (empty: every case). */
  cases: string[];
}

/** Parse argv (without node and script). Unknown options or suites are errors. */
export function parseArgs(argv: string[]): RunArgs {
  const args: RunArgs = { suites: [], quick: false, json: false, cases: [] };
  for (const a of argv) {
    if (a === '--quick') args.quick = true;
    else if (a.startsWith('--case=') && a.length > 7) args.cases.push(a.slice(7));
    else if (a === '--json') args.json = true;
    else if (a === '--help' || a === '-h') throw new UsageError('');
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else if ((SUITES as readonly string[]).includes(a)) args.suites.push(a);
    else throw new UsageError(`unknown suite "${a}" (known: ${SUITES.join(', ')})`);
  }
  if (args.suites.length === 0) args.suites = [...SUITES];
  return args;
}

class UsageError extends Error {}

/** Import one suite; null when its module is not there yet. */
async function loadSuite(name: string): Promise<Suite | null> {
  const url = new URL(`./${name}.js`, import.meta.url);
  if (!existsSync(fileURLToPath(url))) return null;
  const mod = (await import(url.href)) as { run?: Suite };
  if (typeof mod.run !== 'function') throw new Error(`bench suite "${name}" does not export run`);
  return mod.run;
}

function fmt(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return x === undefined ? '' : String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 100 ? x.toFixed(0) : a >= 10 ? x.toFixed(1) : a >= 1 ? x.toFixed(2) : x.toFixed(3);
}

/** The human-readable table of results. */
export function formatTable(results: readonly BenchResult[]): string {
  const table = new Table({
    head: ['suite', 'case', 'value', 'unit', 'baseline', 'baseline value', 'ratio', 'workers', 'efficiency', 'note'],
    style: { head: [], border: [] },
  });
  for (const r of results) {
    if (r.skipped !== undefined) table.push([r.suite, r.case, 'skipped', r.unit, r.baseline ?? '', '', '', '', '', r.skipped]);
    else table.push([r.suite, r.case, fmt(r.value), r.unit, r.baseline ?? '', fmt(r.baselineValue), fmt(r.ratio), r.workers ?? '', fmt(r.efficiency), r.note ?? '']);
  }
  return table.toString();
}

/** Round figures for the JSON line (4 significant digits; ratios stay meaningful). */
function tidy(r: BenchResult): BenchResult {
  const o: BenchResult = { ...r };
  for (const k of ['value', 'baselineValue', 'ratio', 'efficiency'] as const) {
    const v = o[k];
    if (typeof v === 'number' && Number.isFinite(v) && v !== 0) o[k] = Number(v.toPrecision(4));
  }
  return o;
}

export async function main(argv: string[]): Promise<number> {
  let args: RunArgs;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    if (e.message) process.stderr.write(`bench: ${e.message}\n`);
    process.stderr.write(`usage: npm run bench -- [${SUITES.join('|')}]... [--quick] [--json] [--case=SUBSTR]...\n`);
    return e.message ? 2 : 0;
  }
  const results: BenchResult[] = [];
  let failed = false;
  for (const name of args.suites) {
    const suite = await loadSuite(name);
    if (suite === null) {
      process.stderr.write(`bench: suite "${name}" not built yet (no dist/bench/${name}.js); skipped\n`);
      continue;
    }
    process.stderr.write(`bench: running ${name}${args.quick ? ' (quick)' : ''}...\n`);
    const t0 = performance.now();
    try {
      const opts: BenchOptions = { quick: args.quick, cases: args.cases };
      results.push(...(await suite(opts)).filter((r) => wanted(opts, r.case)));
    } catch (e) {
      failed = true;
      process.stderr.write(`bench: suite "${name}" failed: ${(e as Error).stack ?? e}\n`);
    }
    process.stderr.write(`bench: ${name} took ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  }
  process.stdout.write(formatTable(results) + '\n');
  if (args.json) process.stdout.write(JSON.stringify(results.map(tidy)) + '\n');
  return failed ? 1 : 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}
