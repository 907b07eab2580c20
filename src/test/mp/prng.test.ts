// Per-boot secrets: HalfSipHash, the secret shared by every CPU, IP IDs and ephemeral ports that differ across runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { testUma, leakCheck } from '../helpers.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { bootSecret, ephemeralPortOffset, halfSipHash, halfSipHash3, ipRandomId, isnOffset } from '../../kern/prng.js';
import { L_IPIDS, L_SECRET } from '../workers/mp-lwkt.js';

const HANDLERS = fileURLToPath(new URL('../workers/mp-lwkt.js', import.meta.url));
const RUN = fileURLToPath(new URL('../workers/prng-run.js', import.meta.url));

test('halfSipHash is HalfSipHash-2-4 (the reference vectors: key 00..07, message 00..n-1)', () => {
  const k0 = 0x03020100;
  const k1 = 0x07060504;
  const msg = (bytes: number) => Array.from({ length: bytes / 4 }, (_, i) => (4 * i) | ((4 * i + 1) << 8) | ((4 * i + 2) << 16) | ((4 * i + 3) << 24));
  const vectors: [number, number][] = [[0, 0x5b9f35a9], [4, 0x89466e2a], [8, 0x8f84b8d0], [12, 0x2f87f057], [16, 0x84acb5d9]];
  for (const [n, want] of vectors) assert.equal(halfSipHash(k0, k1, msg(n)), want, `${n} bytes`);
  const w = msg(12);
  assert.equal(halfSipHash3(k0, k1, w[0], w[1], w[2]), 0x2f87f057);
});

test('the boot secret is made once per arena from random bytes and every CPU reads the same one', async () => {
  const uma = testUma({ ncpus: 8, size: 32 << 20 });
  Mbufs.create(uma);
  const done = leakCheck(uma);
  const mine = bootSecret(uma.arena).k;
  assert.notDeepEqual([...mine], [0, 0, 0, 0]);
  assert.notDeepEqual([...mine], [...bootSecret(testUma({ size: 8 << 20 }).arena).k], 'another boot, another secret');
  const m = await Machine.start({ uma, ncpus: 2, handlers: [HANDLERS], spinUs: 0 });
  try {
    for (const c of [0, 1]) {
      const [e, ...k] = await m.call(c, L_SECRET, [], 4);
      assert.equal(e, 0);
      assert.deepEqual(k, [...mine], `cpu${c}`);
    }
    const [, ...a] = await m.call(0, L_IPIDS, [], 8);
    const [, ...b] = await m.call(1, L_IPIDS, [], 8);
    assert.notDeepEqual(a, b, 'each CPU has its own IP ID generator');
    assert.ok([...a, ...b].every((id) => id >= 0 && id <= 0xffff));
  } finally {
    await m.stop();
  }
  done();
});

test('port and ISN offsets are keyed: they depend on the secret and on every part of the tuple', () => {
  const uma = testUma({ size: 8 << 20 });
  const s1 = bootSecret(uma.arena);
  const s2 = bootSecret(testUma({ size: 8 << 20 }).arena);
  const a = 0x0a000001;
  const b = 0x0a000002;
  assert.notEqual(ephemeralPortOffset(s1, a, b, 53), ephemeralPortOffset(s2, a, b, 53));
  assert.notEqual(ephemeralPortOffset(s1, a, b, 53), ephemeralPortOffset(s1, a, b, 54));
  assert.notEqual(isnOffset(s1, a, 1000, b, 80), isnOffset(s1, a, 1001, b, 80));
  assert.notEqual(isnOffset(s1, a, 1000, b, 80), isnOffset(s2, a, 1000, b, 80));
  assert.equal(isnOffset(s1, a, 1000, b, 80), isnOffset(s1, a, 1000, b, 80));
  const ids = new Set(Array.from({ length: 1000 }, () => ipRandomId(uma.arena)));
  assert.ok(ids.size > 900, `random 16-bit IDs rarely repeat in 1000 draws: ${ids.size} distinct`);
});

test('IP IDs and ephemeral ports differ across runs (two processes, same seed and same code)', () => {
  const run = () => JSON.parse(execFileSync(process.execPath, [RUN], { encoding: 'utf8' })) as { ids: number[]; ports: number[] };
  const r1 = run();
  const r2 = run();
  assert.equal(r1.ids.length, 8);
  assert.equal(r1.ports.length, 4);
  assert.notDeepEqual(r1.ids, r2.ids);
  assert.notDeepEqual(r1.ports, r2.ports);
  for (const p of [...r1.ports, ...r2.ports]) assert.ok(p >= 1024 && p <= 65535);
});
