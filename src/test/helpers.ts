/**
 * Shared test helpers. Every test that allocates calls leakCheck() first and
 * the returned function last: each zone's `used` must be back where it started.
 */
import assert from 'node:assert/strict';
import { Uma } from '../uma/uma.js';
import { usedByZone } from '../uma/stats.js';
import { UMA_ZFLAG_INTERNAL } from '../uma/flags.js';
import type { ArenaOptions } from '../vm/arena.js';

/** A debug-mode UMA (witness, trash checks) sized for tests. */
export function testUma(opts: ArenaOptions = {}): Uma {
  const uma = Uma.create({ size: 64 << 20, ncpus: 8, debug: true, ...opts });
  uma.logger = () => {};
  return uma;
}

/** Zones a test owns: UMA's internal bucket and slab-header zones hold caches of their own. */
function userZones(uma: Uma) {
  return uma.allZones().filter((z) => (z.flags & UMA_ZFLAG_INTERNAL) === 0);
}

/** Snapshot every zone's used count; the returned function asserts it is unchanged. */
export function leakCheck(uma: Uma): () => void {
  const before = usedByZone(userZones(uma));
  return () => {
    const after = usedByZone(userZones(uma));
    for (const [name, used] of after) {
      assert.equal(used, before.get(name) ?? 0, `zone "${name}" leaked: used ${used}, was ${before.get(name) ?? 0}`);
    }
  };
}

/**
 * leakCheck for tests that use mbufs: the packet zone keeps clusters attached
 * to its cached items, so they are given back before the check.
 */
export function mbufLeakCheck(uma: Uma, mb: { drainPacketCache(): void }): () => void {
  const done = leakCheck(uma);
  return () => {
    mb.drainPacketCache();
    done();
  };
}
