// The sysctl tree: typed nodes, errors with codes, vm.uma.<zone>.* over the arena, tunables, and
// a write in one real worker thread seen by another.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { testUma, leakCheck } from '../helpers.js';
import { Sysctl, SysctlError, ctlName, formatEntries } from '../../kern/sysctl/sysctl.js';
import { sysctlFor, zoneCtlNames } from '../../kern/sysctl/vm.js';
import { registerTunable, tunableIndex, TUNABLES_MAX } from '../../kern/sysctl/tunables.js';
import { M_NOWAIT } from '../../uma/flags.js';
import { H_ZONE_WARNINGS } from '../../vm/layout.js';

test('typed nodes: get, set, read-only, bounds, unknown names, descriptions', () => {
  const t = new Sysctl();
  let v = 10;
  let s = 'abc';
  t.registerNode({ name: 'kern.test.rw', type: 'int', description: 'rw int', get: () => v, set: (x) => (v = x as number), min: 0, max: 100 });
  t.registerNode({ name: 'kern.test.ro', type: 'int', description: 'ro int', get: () => 42 });
  t.registerNode({ name: 'kern.test.str', type: 'string', description: 'a string', get: () => s, set: (x) => (s = x as string) });
  assert.equal(t.get('kern.test.rw'), 10);
  t.set('kern.test.rw', 20);
  assert.equal(v, 20);
  t.set('kern.test.rw', ' 30 '); // as typed on a command line
  assert.equal(t.get('kern.test.rw'), 30);
  t.set('kern.test.str', 'xyz');
  assert.equal(t.get('kern.test.str'), 'xyz');
  const code = (c: string, errno: string) => (e: unknown) => e instanceof SysctlError && e.code === c && e.errno === errno;
  assert.throws(() => t.set('kern.test.ro', 1), code('ERR_SLABNET_SYSCTL_EPERM', 'EPERM'));
  assert.throws(() => t.set('kern.test.rw', 101), code('ERR_SLABNET_SYSCTL_EINVAL', 'EINVAL'));
  assert.throws(() => t.set('kern.test.rw', -1), code('ERR_SLABNET_SYSCTL_EINVAL', 'EINVAL'));
  assert.throws(() => t.set('kern.test.rw', 'ten'), code('ERR_SLABNET_SYSCTL_EINVAL', 'EINVAL'));
  assert.throws(() => t.set('kern.test.rw', 1.5), code('ERR_SLABNET_SYSCTL_EINVAL', 'EINVAL'));
  assert.throws(() => t.set('kern.test.str', 5), code('ERR_SLABNET_SYSCTL_EINVAL', 'EINVAL'));
  assert.equal(v, 30, 'rejected writes changed nothing');
  assert.throws(() => t.get('kern.test.nope'), code('ERR_SLABNET_SYSCTL_ENOENT', 'ENOENT'));
  assert.throws(() => t.get('kern.test'), code('ERR_SLABNET_SYSCTL_ENOENT', 'ENOENT'), 'interior node is not a leaf');
  assert.throws(() => t.get('bad name!'), code('ERR_SLABNET_SYSCTL_ENOENT', 'ENOENT'));
  assert.throws(() => t.registerNode({ name: 'kern.test.rw', type: 'int', description: '', get: () => 0 }), code('ERR_SLABNET_SYSCTL_EEXIST', 'EEXIST'));
  assert.throws(() => t.registerNode({ name: 'kern.test.rw.sub', type: 'int', description: '', get: () => 0 }), code('ERR_SLABNET_SYSCTL_EEXIST', 'EEXIST'));
  assert.throws(() => t.registerNode({ name: 'kern..x', type: 'int', description: '', get: () => 0 }), code('ERR_SLABNET_SYSCTL_EINVAL', 'EINVAL'));
  assert.deepEqual(t.describe('kern.test.ro'), { name: 'kern.test.ro', type: 'int', description: 'ro int', writable: false, value: 42 });
  assert.deepEqual(t.list('kern.test').map((e) => e.name), ['kern.test.ro', 'kern.test.rw', 'kern.test.str']);
  assert.throws(() => t.list('kern.nothing'), code('ERR_SLABNET_SYSCTL_ENOENT', 'ENOENT'));
  assert.equal(formatEntries(t.list('kern.test.ro')), 'kern.test.ro: 42\n');
  t.unregister('kern.test.ro');
  assert.equal(t.has('kern.test.ro'), false);
});

test('zone names become sysctl names as in FreeBSD (./\\ - to _, duplicates get _N)', () => {
  assert.equal(ctlName('UMA Slabs 64'), 'UMA_Slabs_64');
  assert.equal(ctlName('mbuf_jumbo_9k'), 'mbuf_jumbo_9k');
  assert.equal(ctlName('a.b/c\\d-e f'), 'a_b_c_d_e_f');
  const fake = (name: string) => ({ name }) as never;
  assert.deepEqual(zoneCtlNames([fake('a b'), fake('a_b'), fake('a-b')]), ['a_b', 'a_b_1', 'a_b_2']);
});

test('vm.uma.<zone>.* reads the zone and writes its limit and bucket size', () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const t = sysctlFor(uma);
  assert.equal(sysctlFor(uma), t, 'one tree per Uma');
  const z = uma.zcreate('test zone', { size: 200 });
  const p = 'vm.uma.test_zone';
  // Writable: the limit goes through setMaxItems, so the zone enforces it.
  t.set(`${p}.limit.max_items`, '4');
  assert.equal(z.getMaxItems(), 4);
  const items: number[] = [];
  for (let i = 0; i < 10; i++) {
    const it = z.alloc(M_NOWAIT);
    if (it === 0) break;
    items.push(it);
  }
  assert.equal(items.length, 4, 'the limit set through sysctl holds');
  z.free(items.pop()!);
  assert.equal(t.get(`${p}.size`), 200);
  assert.equal(t.get(`${p}.keg.rsize`), 208);
  assert.equal(t.get(`${p}.stats.allocs`), 4);
  assert.equal(t.get(`${p}.stats.frees`), 1);
  assert.equal(t.get(`${p}.stats.current`), 3);
  assert.equal(t.get(`${p}.stats.fails`), 1);
  assert.equal(t.get(`${p}.stats.xdomain`), 0);
  assert.equal(t.get(`${p}.limit.max_items`), 4);
  assert.ok((t.get(`${p}.limit.items`) as number) <= 4);
  assert.ok((t.get(`${p}.limit.hits`) as number) >= 1);
  assert.equal(t.get(`${p}.limit.sleepers`), 0);
  assert.equal(t.get(`${p}.keg.ipers`), z.keg.ipers);
  assert.equal(t.get(`${p}.keg.ppera`), 1);
  assert.equal(t.get(`${p}.keg.pages`), z.keg.pagesHeld);
  assert.equal(t.get(`${p}.keg.free_items`), z.keg.freeItems);
  assert.equal(t.get(`${p}.flags`), '');
  assert.equal(t.get('vm.uma.UMA_Buckets.flags'), 'NOBUCKET,INTERNAL');
  t.set(`${p}.limit.max_items`, 0);
  assert.equal(z.getMaxItems(), 0);
  t.set(`${p}.bucket_size`, 7);
  assert.equal(z.bucketSize, 7);
  assert.throws(() => t.set(`${p}.bucket_size`, 100000), { code: 'ERR_SLABNET_SYSCTL_EINVAL' });
  assert.throws(() => t.set(`${p}.limit.max_items`, -1), { code: 'ERR_SLABNET_SYSCTL_EINVAL' });
  assert.throws(() => t.set(`${p}.size`, 1), { code: 'ERR_SLABNET_SYSCTL_EPERM' });
  t.set(`${p}.limit.warning`, 'custom warning');
  assert.equal(z.warning, 'custom warning');
  // A zone made after the tree exists shows up at the next lookup.
  uma.zcreate('late-zone', { size: 32 });
  assert.equal(t.get('vm.uma.late_zone.size'), 32);
  assert.ok(t.list('vm.uma.late_zone').length >= 20);
  for (const it of items) z.free(it);
  done();
});

test('global vm nodes read and write the arena header', () => {
  const uma = testUma();
  const t = sysctlFor(uma);
  assert.equal(t.get('vm.zone_warnings'), 1);
  t.set('vm.zone_warnings', 0);
  assert.equal(Atomics.load(uma.arena.i32, H_ZONE_WARNINGS), 0);
  assert.throws(() => t.set('vm.zone_warnings', 2), { code: 'ERR_SLABNET_SYSCTL_EINVAL' });
  assert.equal(t.get('vm.stats.page.free'), uma.pages.freePages);
  assert.equal((t.get('vm.stats.page.free') as number) + (t.get('vm.stats.page.inuse') as number), t.get('vm.stats.page.count'));
  assert.equal(t.get('hw.ncpu'), 8);
  assert.equal(t.get('vm.debug'), 1);
  const all = t.list();
  assert.ok(all.some((e) => e.name === 'vm.uma.UMA_Slabs_64.keg.rsize'));
  assert.ok(all.every((e, i) => i === 0 || all[i - 1].name < e.name), 'sorted');
});

test('arena tunables: one shared word per name, bounded table', () => {
  const uma = testUma();
  const t = sysctlFor(uma);
  let seen = -1;
  const knob = registerTunable(t, uma.arena, { name: 'kern.ipc.nmbtest', description: 'x', initial: 25, min: 1, max: 100, onSet: (v) => (seen = v) });
  assert.equal(t.get('kern.ipc.nmbtest'), 25);
  t.set('kern.ipc.nmbtest', 50);
  assert.equal(knob.get(), 50);
  assert.equal(seen, 50);
  assert.equal(tunableIndex(uma.arena, 'kern.ipc.nmbtest', 999), knob.index, 'the same name finds the same word');
  assert.equal(Atomics.load(uma.arena.i32, knob.index), 50, 'initial value of an existing tunable is ignored');
  assert.throws(() => t.set('kern.ipc.nmbtest', 0), { code: 'ERR_SLABNET_SYSCTL_EINVAL' });
  const ro = registerTunable(t, uma.arena, { name: 'kern.ipc.rotest', description: 'x', initial: 3, readonly: true });
  assert.throws(() => t.set('kern.ipc.rotest', 4), { code: 'ERR_SLABNET_SYSCTL_EPERM' });
  ro.set(4);
  assert.equal(t.get('kern.ipc.rotest'), 4);
  for (let i = 2; i < TUNABLES_MAX; i++) tunableIndex(uma.arena, `fill.${i}`, i);
  assert.throws(() => tunableIndex(uma.arena, 'one.too.many', 0), { code: 'ERR_SLABNET_SYSCTL_EINVAL' });
  assert.throws(() => tunableIndex(uma.arena, 'x'.repeat(60), 0), { code: 'ERR_SLABNET_SYSCTL_EINVAL' });
});

function ask(w: Worker, msg: object): Promise<{ value?: number | string; error?: string; cpu?: number }> {
  return new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.postMessage(msg);
  });
}

test('a write made in one worker thread is read by another (values live in the arena)', async () => {
  const uma = testUma();
  const done = leakCheck(uma);
  const z = uma.zcreate('shared zone', { size: 128 });
  const url = new URL('./sysctl-worker.js', import.meta.url);
  const w1 = new Worker(url, { workerData: { sab: uma.arena.sab } });
  const w2 = new Worker(url, { workerData: { sab: uma.arena.sab } });
  try {
    const a = await ask(w1, { op: 'set', name: 'vm.uma.shared_zone.limit.max_items', value: 77 });
    assert.equal(a.value, 77);
    const b = await ask(w2, { op: 'get', name: 'vm.uma.shared_zone.limit.max_items' });
    assert.equal(b.value, 77);
    assert.notEqual(a.cpu, b.cpu, 'two different CPUs');
    assert.equal(z.getMaxItems(), 77, 'and the main thread sees it too');
    await ask(w2, { op: 'set', name: 'kern.ipc.test_knob', value: '123' });
    assert.equal((await ask(w1, { op: 'get', name: 'kern.ipc.test_knob' })).value, 123);
    await ask(w1, { op: 'set', name: 'vm.zone_warnings', value: 0 });
    assert.equal(sysctlFor(uma).get('vm.zone_warnings'), 0);
    assert.equal((await ask(w2, { op: 'get', name: 'vm.nope' })).error, 'ERR_SLABNET_SYSCTL_ENOENT');
    assert.equal((await ask(w2, { op: 'set', name: 'kern.ipc.test_knob', value: 5000 })).error, 'ERR_SLABNET_SYSCTL_EINVAL');
  } finally {
    await w1.terminate();
    await w2.terminate();
  }
  done();
});
