// The main job as a user runs it: `slabnet demo` takes -o sysctls at start,
// opens its control socket (the tools read and change the running demo),
// and on Ctrl-C (SIGINT) stops the load early and still prints its summary
// and leak check, exiting 0. Bad -o arguments are refused before any load.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const mainJs = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'sldj-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const env = { ...process.env, SLABNET_CTL_DIR: dir };

function cli(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [mainJs, ...args], { env });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => res({ status, stdout, stderr }));
  });
}

test('demo -o sets sysctls, serves its control socket, and prints the summary on SIGINT', async () => {
  const demo = spawn(process.execPath, [mainJs, 'demo', '--seconds', '120', '--cpus', '2', '-o', 'kern.ipc.nmbclusters=20000', '-o', 'net.inet.ip.ttl=33'], { env });
  let stdout = '';
  let stderr = '';
  demo.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => demo.on('close', (code) => res(code)));
  await new Promise<void>((res, rej) => {
    demo.stdout.on('data', (d) => {
      stdout += d;
      if (/control socket /.test(stdout)) res();
    });
    demo.on('close', () => rej(new Error(`demo exited early: ${stdout}${stderr}`)));
  });
  assert.match(stdout, /^kern\.ipc\.nmbclusters: \d+ -> 20000$/m);
  assert.match(stdout, /^net\.inet\.ip\.ttl: 64 -> 33$/m);
  const get = await cli('sysctl', 'kern.ipc.nmbclusters', 'net.inet.ip.ttl');
  assert.equal(get.stdout, 'kern.ipc.nmbclusters: 20000\nnet.inet.ip.ttl: 33\n', get.stderr);
  const set = await cli('sysctl', 'kern.ipc.nmbclusters=15000');
  assert.equal(set.stdout, 'kern.ipc.nmbclusters: 20000 -> 15000\n', set.stderr);
  const m = await cli('netstat', '-m');
  assert.equal(m.status, 0, m.stderr);
  assert.match(m.stdout, /^\d+\/\d+\/\d+\/15000 mbuf clusters in use/m);
  // The HTTP load generator's eight keep-alive connections (they may still be opening).
  let an = await cli('netstat', '-an');
  const established = (t: string) => t.split('\n').filter((l) => /^tcp4 .*10\.0\.0\.1\.\d+ +10\.0\.0\.\d+\.80 +ESTABLISHED/.test(l)).length;
  for (let i = 0; i < 50 && established(an.stdout) < 8; i++) an = await cli('netstat', '-an');
  assert.equal(established(an.stdout), 8, an.stdout + an.stderr);
  // The load is running: two snapshots a moment apart differ.
  const s1 = await cli('netstat', '-s', '-p', 'tcp');
  const s2 = await cli('netstat', '-s', '-p', 'tcp');
  assert.notEqual(s1.stdout, s2.stdout);
  const t0 = Date.now();
  demo.kill('SIGINT');
  const code = await exited;
  assert.equal(code, 0, stdout + stderr);
  assert.ok(Date.now() - t0 < 30_000, 'stopped long before its 120 s');
  assert.match(stderr, /interrupted: finishing/);
  assert.match(stdout, /\d+ HTTP requests answered in [\d.]+ s/);
  assert.match(stdout, /^netstat -m:\n\d+\/\d+\/\d+ mbufs in use/m);
  assert.match(stdout, /\/15000 mbuf clusters in use/);
  assert.match(stdout, /^no leaks/m);
  assert.match(stdout, /^demo: stopped by SIGINT$/m);
  // Its socket is gone.
  const after = await cli('netstat', '-m');
  assert.equal(after.status, 1);
  assert.match(after.stderr, /no running slabnet system/);
});

test('SIGTERM ends the UDP demo (--udp) the same way (a shell background job has SIGINT ignored)', async () => {
  const demo = spawn(process.execPath, [mainJs, 'demo', '--udp', '--seconds', '120', '--cpus', '1', '--no-control'], { env });
  let stdout = '';
  demo.stdout.on('data', (d) => (stdout += d));
  const exited = new Promise<number | null>((res) => demo.on('close', (code) => res(code)));
  await new Promise<void>((res) => demo.stdout.on('data', () => /in-memory link/.test(stdout) && res()));
  demo.kill('SIGTERM');
  assert.equal(await exited, 0, stdout);
  assert.doesNotMatch(stdout, /control socket/);
  assert.match(stdout, /^no leaks/m);
  assert.match(stdout, /\d+ requests answered in [\d.]+ s: \d+ requests\/s \(4 client sockets/);
  assert.match(stdout, /^demo: stopped by SIGTERM$/m);
});

test('demo -o with a bad name or value exits 2 before any load', () => {
  for (const o of ['kern.nosuch=1', 'kern.ipc.nmbclusters=lots', 'novalue']) {
    const r = spawnSync(process.execPath, [mainJs, 'demo', '--seconds', '30', '--cpus', '1', '-o', o], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 2, `${o}: ${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /requests answered/);
  }
});
