/**
 * The report of a contained input fault (Ifnet.input caught an exception
 * from the stack while handling one received frame): a log line naming the
 * stack instance (its name says the host and CPU, "host0.cpu1"), the
 * interface, the function that threw and the error, at most one a second
 * on the stack's clock (ppsratecheck), with the count of those suppressed
 * meanwhile. The fault itself is counted by the interface (ifaults).
 *
 * Per stack instance; no lock; never sleeps.
 */
import type { Ifnet } from '../net/if.js';
import type { Stack } from './stack.js';

/** Log lines per second at most (FreeBSD logs such events through ppsratecheck). */
export const INPUT_FAULT_LOG_PPS = 1;

/** The first stack frame of e that is not the thrower's constructor: "Class.method" or "function". */
export function faultSite(e: unknown): string {
  const stack = e instanceof Error && typeof e.stack === 'string' ? e.stack.split('\n') : [];
  for (const line of stack) {
    const m = /^\s+at (?:async )?([^\s(]+)(?: \[as [^\]]+\])? \(/.exec(line) ?? /^\s+at (?:async )?([^\s(]+)$/.exec(line);
    if (m !== null && !m[1].startsWith('new ')) return m[1];
  }
  return 'unknown';
}

/** A reporter for ifp.onInputFault that logs through st.log, rate-limited on st's clock. */
export function inputFaultReporter(st: Stack): (ifp: Ifnet, e: unknown, freed: boolean) => void {
  let last = -Infinity;
  let suppressed = 0;
  return (ifp, e, freed) => {
    const now = st.now();
    if (now - last < 1000 / INPUT_FAULT_LOG_PPS) {
      suppressed++;
      return;
    }
    last = now;
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    const more = suppressed > 0 ? ` (${suppressed} more since the last report)` : '';
    suppressed = 0;
    st.log(`${ifp.name}: input handler ${faultSite(e)} threw ${what}; frame ${freed ? 'dropped' : 'left to its holder'}${more}`);
  };
}
