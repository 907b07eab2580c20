// The README quotes examples/*.mjs: they must run as written against the
// package entry point ('slabnet' resolves to this package by its exports).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function run(file: string, env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env });
}

test('examples/uma.mjs allocates, frees and prints a vmstat row', () => {
  const r = run('examples/uma.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^used 0, requests 1$/m);
  assert.match(r.stdout, /^packets: +2048,/m);
});

test('examples/udp.mjs gets its datagram echoed by the stack on two CPUs', () => {
  const r = run('examples/udp.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello, slabnet from 10.0.0.2:7\n');
});

test('examples/router.mjs: three stacks, a router between two networks, default routes both ways', () => {
  const r = run('examples/router.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello through a router from 10.0.2.1:7, 2 packets forwarded by r\n');
});

test('examples/userdev.mjs: two systems joined by user devices, ARP and UDP over a JS wire', () => {
  const r = run('examples/userdev.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'hello over a JS wire from 192.168.7.2:7 (6 frames crossed the wire)\n');
});

test('examples/control.mjs opens a control socket and reads and writes itself through it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'slex-'));
  try {
    const r = run('examples/control.mjs', { ...process.env, SLABNET_CTL_DIR: dir });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\/\d+\/\d+\/\d+ mbuf clusters in use \(current\/cache\/total\/max\)$/m);
    assert.match(r.stdout, /^kern\.ipc\.nmbclusters: \d+ -> 1000; the system reads 1000$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('package entries: slabnet (the product), slabnet/uma and slabnet/mbuf (the allocator) resolve by the exports map', () => {
  const code = `
    const s = await import('slabnet'); const u = await import('slabnet/uma'); const m = await import('slabnet/mbuf');
    console.log([typeof s.System, typeof s.UserDevice, typeof s.FaultInjector, typeof s.ArgumentError, typeof u.Uma, typeof u.Zone, typeof m.Mbufs, typeof m.m_copydata].join(' '));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), Array(8).fill('function').join(' '));
});

test('examples/http.mjs serves Node\'s http.Server on one stack to a client on another', () => {
  const r = run('examples/http.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '200 hello 10.0.0.1, this is /\n200 hello 10.0.0.1, this is /slabnet\n');
});

test('examples/proxy.mjs relays a slabnet TCP connection to a kernel loopback server and back, half-close included', () => {
  const r = run('examples/proxy.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'HELLO THROUGH A USERSPACE PROXY (via 10.9.0.2:8080)\n');
});
