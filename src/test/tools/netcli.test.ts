// The main job and the netstat commands through the real CLI: `demo` brings
// up two stacks on CPU workers, runs Node's http.Server on slabnet TCP and a
// keep-alive HTTP load generator for a second and prints every report with
// no leak; `demo --udp` is the DNS-like UDP load; a bad option is refused;
// `netstat -an` lists the bound server on every CPU; `uma-demo` is still there.
import { test, after } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const mainJs = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

// The demo opens a control socket: keep it out of the user's directory.
const ctlDir = mkdtempSync(join(tmpdir(), 'slnc-'));
after(() => rmSync(ctlDir, { recursive: true, force: true }));

function cli(...args: string[]) {
  return spawnSync(process.execPath, [mainJs, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, SLABNET_CTL_DIR: ctlDir } });
}

test('demo --seconds 1 (HTTP over TCP on the CPUs) exits 0 and prints req/s, percentiles, netstat -an/-s with tcp/-m, vmstat -z and no leaks', () => {
  const r = cli('demo', '--seconds', '1', '--cpus', '2');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const o = r.stdout;
  assert.match(o, /2 CPU workers run TCP\/IP/);
  const rate = /(\d+) HTTP requests answered in [\d.]+ s: (\d+) requests\/s \(8 keep-alive connections x 1 in flight, GET over slabnet TCP; (\d+) connections accepted, 0 bad/.exec(o);
  assert.ok(rate && Number(rate[1]) > 0 && Number(rate[2]) > 0, o);
  assert.equal(Number(rate[3]), 8, 'keep-alive: one connection per load generator connection');
  assert.match(o, /latency ms: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}max [\d.]+ {2}\(first request of each connection, with its handshake: max [\d.]+\)/);
  // netstat -an while the connections were up: the listener on both CPUs, 8 established each side.
  const an = o.slice(o.indexOf('netstat -an:'), o.indexOf('netstat -s'));
  assert.equal(an.split('\n').filter((l) => /^tcp4 .*\*\.80 +\*\.\* +LISTEN/.test(l)).length, 2, an);
  assert.equal(an.split('\n').filter((l) => /^tcp4 .*10\.0\.0\.1\.\d+ +10\.0\.0\.\d+\.80 +ESTABLISHED/.test(l)).length, 8, an);
  assert.equal(an.split('\n').filter((l) => /^tcp4 .*10\.0\.0\.\d+\.80 +10\.0\.0\.1\.\d+ +ESTABLISHED/.test(l)).length, 8, an);
  assert.match(o, /netstat -s \(server /);
  assert.match(o, /^tcp:\n\t\d+ packets sent/m);
  assert.match(o, /^\t8 connection accepts$/m);
  assert.match(o, /^ip:\n\t\d+ total packets received/m);
  assert.match(o, /mbuf clusters in use/);
  assert.match(o, /ITEM +SIZE +LIMIT +USED/);
  assert.match(o, /^no leaks/m);
  // Every answered request was a data segment the server sent.
  const sent = /netstat -s \(server [^\n]*\n[\s\S]*?tcp:\n\t\d+ packets sent\n\t(\d+) data packets sent/.exec(o);
  assert.ok(sent && Number(sent[1]) >= Number(rate[1]), o);
});

test('demo with a bad option is refused before any load', () => {
  for (const args of [['--conns', '0'], ['--cpus', 'x'], ['--nosuch']]) {
    const r = cli('demo', '--seconds', '1', ...args);
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, /error: /, args.join(' '));
    assert.doesNotMatch(r.stdout, /requests answered/);
  }
});

test('demo --udp --seconds 1 exits 0 and prints rate, percentiles, netstat -s/-i/-an/-m, vmstat -z and no leaks', () => {
  const r = cli('demo', '--udp', '--seconds', '1', '--cpus', '2');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const o = r.stdout;
  const rate = /(\d+) requests answered in [\d.]+ s: (\d+) requests\/s/.exec(o);
  assert.ok(rate && Number(rate[1]) > 0, 'requests were answered');
  assert.match(o, /latency ms: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}max [\d.]+/);
  assert.match(o, /netstat -s \(host1/);
  assert.match(o, /^udp:\n\t\d+ datagrams received/m);
  assert.match(o, /^ip:\n\t\d+ total packets received/m);
  assert.match(o, /xl0\/h1 +1500 10\.0\.0\.2/);
  assert.match(o, /udp4 +\d+ +0 +\*\.53 +\*\.\*/);
  assert.match(o, /mbuf clusters in use/);
  assert.match(o, /ITEM +SIZE +LIMIT +USED/);
  assert.match(o, /^no leaks/m);
  // Counters summed from the arena agree: every query the server received was answered.
  const recv = /netstat -s \(host1[^\n]*\n[\s\S]*?udp:\n\t(\d+) datagrams received/.exec(o);
  assert.ok(recv && Number(recv[1]) >= Number(rate[1]));
});

test('netstat -an lists the bound server socket on every CPU and the connected client on one', () => {
  const r = cli('netstat', '-an', '--local', '--cpus', '2');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const srv = r.stdout.split('\n').filter((l) => /^udp4 .*\*\.53 +\*\.\*/.test(l));
  assert.equal(srv.length, 2, r.stdout);
  assert.equal(r.stdout.split('\n').filter((l) => /10\.0\.0\.1\.\d+ +10\.0\.0\.2\.53/.test(l)).length, 1, r.stdout);
});

test('netstat -s and -m print FreeBSD-style reports; netstat with no flag is an error; uma-demo still runs', () => {
  const s = cli('netstat', '-s', '-m', '--local');
  assert.equal(s.status, 0, s.stderr);
  assert.match(s.stdout, /\t16 datagrams received/);
  assert.match(s.stdout, /mbufs in use/);
  assert.notEqual(cli('netstat').status, 0);
  const u = cli('uma-demo', '--seconds', '0.2', '--workers', '1');
  assert.equal(u.status, 0, u.stderr);
  assert.match(u.stdout, /no leaks/);
});
