/**
 * `slabnet demo`: N worker CPUs allocate items and malloc memory, trade them
 * through shared rings (each frees what its neighbour allocated) for a few
 * seconds under a progress bar, are joined, and the `vmstat -z` report is
 * printed; the demo fails if any zone or page run leaked or a stamp was wrong.
 *
 * Structure for later layers: createSystem() builds the system, a workload
 * runs on it (runTradingWorkload here; the network stack's UDP exchange
 * later), and the report step prints and checks.
 */
import { Worker } from 'node:worker_threads';
import cliProgress from 'cli-progress';
import { createSystem, leakedPages, leakedZones, type System } from './system.js';
import { HandleRing } from './ring.js';
import { C_PROGRESS, C_STOP, C_STRIDE, type DemoWorkerData, type DemoWorkerReport } from './demo-protocol.js';
import { vmstatZ } from '../uma/vmstat.js';

export interface DemoOptions {
  seconds: number;
  workers: number;
  debug?: boolean;
  /** Show a progress bar (on stderr) when it is a terminal. */
  progress?: boolean;
  out?: (text: string) => void;
}

export interface WorkloadResult {
  reports: DemoWorkerReport[];
  seconds: number;
}

/**
 * Start `workers` CPUs on the system's arena, let them trade items for
 * `seconds`, stop them and wait until each has drained its inbox and flushed
 * its caches. Rejects if a worker fails.
 */
export async function runTradingWorkload(sys: System, opts: DemoOptions): Promise<WorkloadResult> {
  const n = opts.workers;
  const ctrl = new Int32Array(new SharedArrayBuffer((C_PROGRESS + C_STRIDE * n) * 4));
  const rings = Array.from({ length: n }, () => HandleRing.alloc(1024));
  const url = new URL('./demo-worker.js', import.meta.url);
  const workers = rings.map((inbox, i) => {
    const wd: DemoWorkerData = { sab: sys.uma.arena.sab, ctrl: ctrl.buffer as SharedArrayBuffer, inbox, outbox: rings[(i + 1) % n], index: i, nworkers: n };
    return new Worker(url, { workerData: wd });
  });
  const reports = workers.map(
    (w) =>
      new Promise<DemoWorkerReport>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => reject(new Error(`demo worker exited with code ${code} before reporting`)));
      }),
  );
  const bar =
    opts.progress && process.stderr.isTTY
      ? new cliProgress.SingleBar({ format: 'trading items [{bar}] {percentage}% | {ops} ops on {workers} CPUs', stream: process.stderr }, cliProgress.Presets.shades_classic)
      : null;
  let t0 = performance.now();
  const totalMs = opts.seconds * 1000;
  // The timed run starts once every worker is trading (a loaded machine may start workers late;
  // a run that ended before some worker began would report nothing for it).
  let allStarted = false;
  const everyWorkerStarted = (): boolean => {
    for (let i = 0; i < n; i++) if (Atomics.load(ctrl, C_PROGRESS + i * C_STRIDE) === 0) return false;
    return true;
  };
  const opsNow = (): number => {
    let s = 0;
    for (let i = 0; i < n; i++) s += Atomics.load(ctrl, C_PROGRESS + i * C_STRIDE);
    return s;
  };
  bar?.start(100, 0, { ops: 0, workers: n });
  try {
    await new Promise<void>((resolve, reject) => {
      const failed = Promise.race(reports).catch(reject); // a worker dying early ends the wait
      void failed;
      const timer = setInterval(() => {
        if (!allStarted) {
          if (!everyWorkerStarted()) return;
          allStarted = true;
          t0 = performance.now();
        }
        const el = performance.now() - t0;
        bar?.update(Math.min(100, Math.floor((100 * el) / totalMs)), { ops: opsNow(), workers: n });
        if (el >= totalMs) {
          clearInterval(timer);
          resolve();
        }
      }, Math.min(100, Math.max(10, totalMs / 10)));
    });
  } finally {
    Atomics.store(ctrl, C_STOP, 1);
  }
  const done = await Promise.all(reports);
  bar?.update(100, { ops: opsNow(), workers: n });
  bar?.stop();
  await Promise.all(workers.map((w) => w.terminate()));
  return { reports: done, seconds: (performance.now() - t0) / 1000 };
}

/** Run the demo; returns the process exit code (0: no leak, no bad stamp). */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const out = opts.out ?? ((t: string) => process.stdout.write(t));
  const sys = createSystem({ ncpus: opts.workers + 1, debug: opts.debug });
  out(`slabnet demo: ${opts.workers} worker CPUs trading items for ${opts.seconds} s\n`);
  const r = await runTradingWorkload(sys, { ...opts, progress: opts.progress ?? true });
  let allocated = 0;
  let received = 0;
  let errors = 0;
  for (const w of r.reports) {
    allocated += w.allocated;
    received += w.received;
    errors += w.verifyErrors;
    out(`  cpu ${w.cpu}: allocated ${w.allocated}, handed on ${w.sent}, received and freed ${w.received}, freed locally ${w.freedLocal}\n`);
    if (w.firstError) out(`  cpu ${w.cpu}: ${w.firstError}\n`);
  }
  out(`  ${allocated} items allocated, ${received} freed on another CPU, in ${r.seconds.toFixed(2)} s\n\n`);
  out(vmstatZ(sys.uma));
  const zones = leakedZones(sys);
  const pages = leakedPages(sys);
  out('\n');
  if (zones.length === 0 && pages === 0 && errors === 0) {
    out('no leaks: every zone is back to 0 used and every malloc page run was returned\n');
    return 0;
  }
  for (const z of zones) out(`LEAK: zone "${z.name}" has ${z.used} item(s) in use\n`);
  if (pages !== 0) out(`LEAK: ${pages} page(s) in use outside any keg\n`);
  if (errors !== 0) out(`CORRUPTION: ${errors} item(s) had a bad stamp\n`);
  return 1;
}
