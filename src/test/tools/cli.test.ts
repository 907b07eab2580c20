// The command line: `uma-demo` runs real workers and prints a vmstat table with no leak,
// `vmstat -z --local` and `sysctl --local` work on a demo arena, and errors exit non-zero.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const mainJs = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const HEADER = 'ITEM                   SIZE  LIMIT     USED     FREE      REQ     FAIL SLEEP XDOMAIN';

function cli(...args: string[]) {
  return spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 60_000 });
}

test('demo exits 0, reports trading between CPUs, prints vmstat -z and finds no leak', () => {
  const r = cli('uma-demo', '--seconds', '0.3');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /4 worker CPUs/);
  assert.ok(r.stdout.includes(HEADER));
  const row = r.stdout.split('\n').find((l) => l.startsWith('demo packet:'));
  assert.ok(row, 'a row for the demo zone');
  const cols = row.slice(20).split(',').map((s) => Number(s.trim()));
  assert.equal(cols.length, 8);
  assert.equal(cols[0], 256, 'SIZE');
  assert.equal(cols[2], 0, 'USED is back to 0');
  assert.ok(cols[4] > 0, 'REQ counted');
  assert.ok(cols[7] > 0, 'XDOMAIN: items were freed on another CPU');
  assert.match(r.stdout, /no leaks/);
  const freed = /(\d+) freed on another CPU/.exec(r.stdout);
  assert.ok(freed && Number(freed[1]) > 0);
});

test('demo with one worker and the debug arena also runs clean', () => {
  const r = cli('uma-demo', '--seconds', '0.2', '--workers', '1', '--debug');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /no leaks/);
});

test('bad options are rejected', () => {
  assert.notEqual(cli('uma-demo', '--seconds', '-1').status, 0);
  assert.notEqual(cli('uma-demo', '--workers', '0').status, 0);
  assert.notEqual(cli('vmstat').status, 0);
});

test('vmstat -z prints the FreeBSD table after a short workload', () => {
  const r = cli('vmstat', '-z', '--local', '--seconds', '0.2');
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.equal(lines[0], HEADER);
  assert.ok(lines.some((l) => /^malloc-4096: +4096, +0,/.test(l)));
});

test('sysctl reads, writes, lists subtrees and reports unknown names', () => {
  let r = cli('sysctl', '--local', 'vm.uma.demo_packet.size', 'vm.zone_warnings=0', 'hw.ncpu');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'vm.uma.demo_packet.size: 256\nvm.zone_warnings: 1 -> 0\nhw.ncpu: 8\n');
  r = cli('sysctl', '--local', 'vm.uma.demo_packet.limit');
  assert.match(r.stdout, /^vm\.uma\.demo_packet\.limit\.hits: 0\n/);
  assert.match(r.stdout, /vm\.uma\.demo_packet\.limit\.max_items: 0\n/);
  r = cli('sysctl', '--local', '-a');
  assert.equal(r.status, 0);
  assert.ok(r.stdout.split('\n').length > 100);
  // Every layer's limits are on the tree, not only UMA's.
  for (const name of ['kern.ipc.nmbclusters', 'kern.ipc.nmbufs', 'kern.ipc.nmbjumbo16', 'kern.ipc.m_defragrandomfailures', 'kern.ipc.maxsockbuf', 'kern.mp.spin_us', 'net.inet.ip.maxfragpackets', 'net.inet.ip.mbuf_frag_size']) {
    assert.match(r.stdout, new RegExp(`^${name.replace(/\./g, '\\.')}: -?\\d+$`, 'm'), `${name} missing from sysctl -a`);
  }
  r = cli('sysctl', '--local', 'kern.ipc.nmbclusters=1000');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^kern\.ipc\.nmbclusters: \d+ -> 1000\n$/);
  r = cli('sysctl', '--local', 'vm.nosuch', 'vm.uma.demo_packet.size=1', 'vm.zone_warnings=x');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /unknown oid 'vm.nosuch'/);
  assert.match(r.stderr, /read only/);
  assert.match(r.stderr, /takes an integer/);
});
