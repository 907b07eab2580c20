/**
 * Benchmark harness, after ../shared/BENCHMARKS.md: each case is timed over
 * several rounds after a warm-up and reports the median; a case compared with
 * a baseline measures both in the same process run and reports the ratio.
 */

export interface BenchResult {
  suite: string;
  case: string;
  unit: string;
  value: number;
  baseline?: string;
  baselineValue?: number;
  ratio?: number;
  workers?: number;
  efficiency?: number;
  note?: string;
  /** Not measured here, and why (no root, a tool missing): value is NaN (null in the JSON). */
  skipped?: string;
}

export interface BenchOptions {
  /** A few seconds per suite, for smoke-testing in CI. */
  quick: boolean;
  /** Run only the cases whose names contain one of these (case-insensitive); empty or absent: all. */
  cases?: readonly string[];
}

/** Is the case `name` selected by opts.cases (run.ts --case=SUBSTR)? */
export function wanted(opts: BenchOptions, name: string): boolean {
  if (opts.cases === undefined || opts.cases.length === 0) return true;
  const n = name.toLowerCase();
  return opts.cases.some((c) => n.includes(c.toLowerCase()));
}

/** A suite module exports `run(opts)`; bench/run.ts finds suites by name. */
export type Suite = (opts: BenchOptions) => Promise<BenchResult[]>;

/**
 * Time `body(n)` (which must perform n operations) and return the median rate
 * in operations per second over `rounds` rounds of about `roundMs` each.
 */
export function measureRate(body: (n: number) => void, opts: BenchOptions, roundMs = 200, rounds = 7): number {
  if (opts.quick) {
    roundMs = Math.min(roundMs, 40);
    rounds = 3;
  }
  let n = 1000;
  // Warm-up and calibration: grow n until one call takes ~roundMs.
  for (;;) {
    const t0 = performance.now();
    body(n);
    const dt = performance.now() - t0;
    if (dt >= roundMs / 2 || n > 1e9) {
      n = Math.max(1, Math.round((n * roundMs) / Math.max(dt, 0.001)));
      break;
    }
    n *= 4;
  }
  const rates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    body(n);
    const dt = performance.now() - t0;
    rates.push(n / (dt / 1000));
  }
  return median(rates);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * The round whose ratio value/baseline is the median (the lower one of an
 * even count): a case timed in interleaved rounds reports that round's value
 * and baseline, so its ratio is the median ratio and still value / baseline.
 */
export function medianRound(values: readonly number[], baselines: readonly number[]): number {
  const order = values.map((_, i) => i).sort((i, j) => values[i] / baselines[i] - values[j] / baselines[j]);
  return order[(order.length - 1) >> 1];
}

/** Build a result comparing `value` with a baseline measured in the same run. */
export function compared(suite: string, name: string, unit: string, value: number, baseline: string, baselineValue: number, extra: Partial<BenchResult> = {}): BenchResult {
  return { suite, case: name, unit, value, baseline, baselineValue, ratio: value / baselineValue, ...extra };
}

/** Keeps results alive so the JIT cannot drop the measured work. */
export let sink = 0;
export function consume(x: number): void {
  sink = (sink + x) | 0;
}
