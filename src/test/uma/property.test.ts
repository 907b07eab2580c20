// Property tests (fast-check): random sequences of alloc / free / drain / trim /
// limit changes / drain requests / reclaim against a reference model (the set
// of live items per zone and the limit semantics). After every step the zone
// statistics and the keg accounting must agree with the model; after every
// sequence every zone is back to its starting `used` and gives its pages back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { testUma, leakCheck } from '../helpers.js';
import { zoneStats } from '../../uma/stats.js';
import { M_NOVM, M_NOWAIT, M_ZERO, UMA_RECLAIM_DRAIN, UMA_RECLAIM_DRAIN_CPU, UMA_RECLAIM_TRIM } from '../../uma/flags.js';
import type { Zone } from '../../uma/zone.js';
import type { Keg } from '../../uma/keg.js';

type Cmd =
  | { op: 'alloc'; z: number; flags: number; n: number }
  | { op: 'free'; z: number; pick: number; n: number }
  | { op: 'drain'; z: number }
  | { op: 'trim'; z: number }
  | { op: 'limit'; z: number; max: number }
  | { op: 'cpudrain'; z: number }
  | { op: 'reclaim'; req: number };

const NZ = 3;
const zi = fc.integer({ min: 0, max: NZ - 1 });
const cmdArb: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ op: fc.constant('alloc' as const), z: zi, flags: fc.constantFrom(M_NOWAIT, M_NOWAIT | M_ZERO, M_NOVM), n: fc.integer({ min: 1, max: 300 }) }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('free' as const), z: zi, pick: fc.nat(), n: fc.integer({ min: 1, max: 300 }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('drain' as const), z: zi }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('trim' as const), z: zi }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('limit' as const), z: zi, max: fc.constantFrom(0, 0, 1, 5, 17, 64, 200, 1000) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cpudrain' as const), z: zi }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reclaim' as const), req: fc.constantFrom(UMA_RECLAIM_TRIM, UMA_RECLAIM_DRAIN, UMA_RECLAIM_DRAIN_CPU) }) },
);

/** The keg's books: free items plus every zone's items fill its slabs exactly. */
function checkKeg(keg: Keg, zones: Zone[]): void {
  const held = zones.filter((z) => z.keg === keg).reduce((a, z) => a + z.items, 0);
  assert.equal(keg.freeItems + held, keg.slabCount * keg.ipers, `keg ${keg.name}: free ${keg.freeItems} + held ${held} != ${keg.slabCount} slabs * ${keg.ipers}`);
  assert.equal(keg.pagesHeld, keg.slabCount * keg.ppera, `keg ${keg.name}: pages`);
}

function runSequence(cmds: Cmd[]): void {
  const uma = testUma({ size: 32 << 20 });
  const done = leakCheck(uma);
  const i32 = uma.arena.i32;
  let ctorRuns = 0;
  const a = uma.zcreate('p.small', { size: 48 });
  const b = uma.zcreate('p.big', {
    size: 700,
    ctor: (item) => {
      ctorRuns++;
      i32[item >> 2] = 0x1234;
      return true;
    },
  });
  const s = uma.zsecondCreate('p.sec', { init: () => true, fini: () => {} }, b);
  const zones = [a, b, s];
  const live: number[][] = [[], [], []];
  const limit = [0, 0, 0];
  const all = new Set<number>();

  for (const c of cmds) {
    const z = 'z' in c ? zones[c.z] : a;
    switch (c.op) {
      case 'alloc':
        for (let k = 0; k < c.n; k++) {
          const before = z.items;
          const it = z.alloc(c.flags);
          if (it === 0) {
            if (c.flags !== M_NOVM) {
              assert.ok(limit[c.z] > 0 && live[c.z].length >= limit[c.z], `${z.name}: NOWAIT failed with ${live[c.z].length} live, limit ${limit[c.z]}`);
            }
            break;
          }
          assert.ok(it > 0 && it % 16 === 0);
          assert.ok(!all.has(it), `${z.name}: 0x${it.toString(16)} handed out twice`);
          if (limit[c.z] > 0) assert.ok(z.items <= Math.max(limit[c.z], before), `${z.name}: ${z.items} items over limit ${limit[c.z]}`);
          if ((c.flags & M_ZERO) !== 0 && c.z !== 1) for (let w = 0; w < 12; w++) assert.equal(i32[(it >> 2) + w], 0);
          all.add(it);
          live[c.z].push(it);
        }
        break;
      case 'free': {
        const l = live[c.z];
        for (let k = 0; k < c.n && l.length > 0; k++) {
          const idx = (c.pick + k * 7) % l.length;
          const it = l[idx];
          l[idx] = l[l.length - 1];
          l.pop();
          all.delete(it);
          z.free(it);
        }
        break;
      }
      case 'drain':
        z.drain();
        break;
      case 'trim':
        z.trim();
        break;
      case 'limit':
        z.setMaxItems(c.max);
        limit[c.z] = c.max;
        break;
      case 'cpudrain':
        z.requestCpuDrain(uma.arena.cpu);
        if ((c.z & 1) === 0) uma.poll(); // else: honoured at the next operation
        break;
      case 'reclaim':
        uma.reclaim(c.req);
        break;
    }
    for (let k = 0; k < NZ; k++) assert.equal(zoneStats(zones[k]).used, live[k].length, `${zones[k].name}: used`);
    checkKeg(a.keg, zones);
    checkKeg(b.keg, zones);
  }
  assert.ok(ctorRuns >= live[1].length);
  for (let k = 0; k < NZ; k++) for (const it of live[k]) zones[k].free(it);
  for (const z of [s, a, b]) {
    z.setMaxItems(0);
    z.drain();
  }
  for (const z of zones) assert.equal(z.items, 0, `${z.name} holds items after the final drain`);
  checkKeg(a.keg, zones);
  checkKeg(b.keg, zones);
  assert.equal(a.keg.pagesHeld + b.keg.pagesHeld, 0, 'every page given back');
  done();
}

test('random alloc/free/drain/trim/limit sequences agree with the reference model', () => {
  fc.assert(fc.property(fc.array(cmdArb, { minLength: 1, maxLength: 60, size: 'max' }), runSequence), { numRuns: 60, seed: 0x51ab, endOnFailure: true });
});
