/**
 * Reporting: the text and JSON forms of a run, per-group counts, and the
 * expected-failures list (one script per line, path relative to the corpus
 * root, then whitespace and a one-line reason; `#` starts a comment). A run
 * checked against the list fails when a script not on it fails and when a
 * listed script passes, so the list only shrinks and stays true.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname, relative, sep } from 'node:path';
import type { RunResult } from './run.js';

export interface ExpectedFailure {
  script: string;
  reason: string;
}

/** Parse an expected-failures file's text. */
export function parseExpectedFailures(text: string): ExpectedFailure[] {
  const out: ExpectedFailure[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+)\s*(.*)$/.exec(line)!;
    out.push({ script: m[1], reason: m[2] });
  }
  return out;
}

export function loadExpectedFailures(path: string): ExpectedFailure[] {
  return parseExpectedFailures(readFileSync(path, 'utf8'));
}

/** A result's path relative to root, with / separators (how the list names scripts). */
export function scriptKey(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}

export interface ExpectationCheck {
  /** Failed and not on the list. */
  unexpectedFailures: RunResult[];
  /** On the list but passed. */
  unexpectedPasses: string[];
  /** On the list but not run (not found). */
  missing: string[];
}

/** Compare results with the expected-failures list. */
export function checkExpectations(root: string, results: readonly RunResult[], expected: readonly ExpectedFailure[]): ExpectationCheck {
  const listed = new Set(expected.map((e) => e.script));
  const seen = new Set<string>();
  const unexpectedFailures: RunResult[] = [];
  const unexpectedPasses: string[] = [];
  for (const r of results) {
    const k = scriptKey(root, r.path);
    seen.add(k);
    if (!r.pass && !listed.has(k)) unexpectedFailures.push(r);
    if (r.pass && listed.has(k)) unexpectedPasses.push(k);
  }
  return { unexpectedFailures, unexpectedPasses, missing: [...listed].filter((k) => !seen.has(k)) };
}

/** Pass/total per top-level folder under root (the suite's groups). */
export function groupCounts(root: string, results: readonly RunResult[]): Map<string, { pass: number; total: number }> {
  const m = new Map<string, { pass: number; total: number }>();
  for (const r of results) {
    const k = scriptKey(root, r.path);
    const g = k.startsWith('..') ? basename(dirname(r.path)) : k.includes('/') ? k.slice(0, k.indexOf('/')) : '.';
    const c = m.get(g) ?? { pass: 0, total: 0 };
    c.total++;
    if (r.pass) c.pass++;
    m.set(g, c);
  }
  return new Map([...m].sort(([a], [b]) => a.localeCompare(b)));
}

/** The human report: one line per script, failures with packetdrill's message, then the totals. */
export function formatText(results: readonly RunResult[], opts: { verbose?: boolean } = {}): string {
  let s = '';
  for (const r of results) {
    if (r.pass) {
      if (opts.verbose) s += `PASS ${r.path} (${r.virtualSecs.toFixed(3)} s virtual, ${r.wallMs} ms)\n`;
    } else s += `FAIL ${r.path}\n${indent(r.error ?? '')}\n`;
    for (const w of r.warnings) s += `  warning: ${w.split('\n').join('\n  ')}\n`;
    if (opts.verbose) for (const n of r.notes) s += `  note: ${n}\n`;
  }
  const pass = results.filter((r) => r.pass).length;
  s += `${pass} of ${results.length} scripts passed\n`;
  return s;
}

function indent(t: string): string {
  return t
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}

/** The JSON report (an object per script plus totals). */
export function formatJson(results: readonly RunResult[], extra: Record<string, unknown> = {}): string {
  const pass = results.filter((r) => r.pass).length;
  return JSON.stringify({ total: results.length, pass, fail: results.length - pass, ...extra, results }, null, 2);
}

/**
 * An expected-failures list for the failing results: each script with its
 * first error, shortened to one line, as the reason (paths relative to root).
 */
export function formatExpectedFailures(root: string, results: readonly RunResult[]): string {
  let s = '# Scripts of the FreeBSD TCP suite that fail today, each with the first error (slabnet packetdrill --write-expected-failures).\n';
  s += '# The conformance test fails when a script not listed here fails, and when a listed one passes.\n';
  for (const r of results) {
    if (r.pass) continue;
    const first = (r.error ?? '').split('\n')[0].replace(/^[^:]*:(\d+:)? ?/, (_m, l: string | undefined) => (l ? `line ${l} ` : ''));
    s += `${scriptKey(root, r.path)} ${first.length > 200 ? first.slice(0, 197) + '...' : first}\n`;
  }
  return s;
}
