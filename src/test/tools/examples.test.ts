// The README quotes examples/*.mjs: they must run as written against the
// package entry point ('slabnet' resolves to this package by its exports).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

function run(file: string) {
  return spawnSync(process.execPath, [file], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
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

test('examples/http.mjs serves Node\'s http.Server on one stack to a client on another', () => {
  const r = run('examples/http.mjs');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '200 hello 10.0.0.1, this is /\n200 hello 10.0.0.1, this is /slabnet\n');
});
