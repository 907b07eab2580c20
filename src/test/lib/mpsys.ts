/**
 * Fixture of the MP node:net tests: a System on worker CPUs with clients a
 * (10.0.1.1) and c (10.0.0.1) and server b on both links (those two address
 * pairs hash to CPU 0 and CPU 1 of 2), and a bounded poll of the event loop
 * (the CPUs run on the real clock). stop() checks that no zone leaked.
 */
import { leakCheck, testUma } from '../helpers.js';
import { System, type LinkOptions, type SystemOptions } from '../../lib/topology.js';

/** Poll cond (sync or async) every 2 ms until true or ms elapsed; its last value. */
export async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const t0 = Date.now();
  while (!(await cond()) && Date.now() - t0 < ms) await new Promise((r) => setTimeout(r, 2));
  return cond();
}

/** A leak-checked System on `cpus` worker CPUs; `stop` stops it and checks that no zone leaked. */
async function checkedSystem(cpus: number, o: Omit<SystemOptions, 'cpus' | 'uma'> = {}) {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await System.start({ ...o, cpus, uma });
  const stop = async (): Promise<void> => {
    await sys.stop();
    sys.mb.drainPacketCache();
    done();
  };
  return { sys, stop };
}

export async function mpSys(cpus = 2) {
  const { sys, stop } = await checkedSystem(cpus);
  const a = sys.addStack('a');
  const b = sys.addStack('b');
  const c = sys.addStack('c');
  sys.link(a, b, { a: '10.0.1.1/24', b: '10.0.1.2/24' });
  sys.link(c, b, { a: '10.0.0.1/24', b: '10.0.0.2/24' });
  await sys.up();
  return { sys, a, b, c, stop };
}

/**
 * Two stacks a and b of a fresh System on `cpus` worker CPUs, joined by one
 * link (a: 10.0.7.1, b: 10.0.7.2 unless `link` says otherwise), up; stop()
 * stops it and checks that no zone leaked.
 */
export async function mpPair(o: { cpus?: number; link?: LinkOptions; system?: Omit<SystemOptions, 'cpus' | 'uma'> } = {}) {
  const { sys, stop } = await checkedSystem(o.cpus ?? 2, o.system);
  const a = sys.addStack('a');
  const b = sys.addStack('b');
  sys.link(a, b, { a: '10.0.7.1/24', b: '10.0.7.2/24', ...o.link });
  await sys.up();
  return { sys, a, b, stop };
}
