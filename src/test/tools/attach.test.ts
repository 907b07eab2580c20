// The CLI tools attach to running systems through their control sockets:
// with none running they say so and exit 1 (no invented numbers); with one
// they need no -N and print that system's figures (netstat -m equal to its
// own netstatM, a sysctl write the system then reads); with two they list
// both and -N picks one. The systems run in this process on worker CPUs;
// the CLI runs as child processes (spawned asynchronously, so that this
// event loop keeps serving the sockets).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNet, type NetSystem } from '../../lib/netuser.js';
import { openControl, type ControlServer } from '../../lib/ctl/index.js';
import { netstatM } from '../../kern/mbuf/stats.js';
import { NET_ECHO_BIND } from '../../net/mpnet.js';
import { readPcap } from '../../net/phy/pcap.js';
import { macToString } from '../../wire/ethernet.js';
import { testUma } from '../helpers.js';

const mainJs = fileURLToPath(new URL('../../cli/main.js', import.meta.url));

let dir: string;
let a: NetSystem;
let b: NetSystem;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'slat-'));
  a = await startNet({ ncpus: 2, uma: testUma({ size: 96 << 20, ncpus: 6, debug: false }) });
  b = await startNet({ ncpus: 1, uma: testUma({ size: 64 << 20, ncpus: 5, debug: false }) });
  for (let c = 0; c < 2; c++) await a.machine.call(c, NET_ECHO_BIND, [1, 7]);
});

after(async () => {
  await a.stop();
  await b.stop();
  rmSync(dir, { recursive: true, force: true });
});

function cli(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [mainJs, ...args], { env: { ...process.env, SLABNET_CTL_DIR: dir } });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (status) => {
      clearTimeout(t);
      res({ status, stdout, stderr });
    });
  });
}

test('no system running: every tool says so and exits 1, printing no figures', async () => {
  for (const args of [['netstat', '-m'], ['vmstat', '-z'], ['sysctl', 'kern.ipc.nmbclusters'], ['arp', '-a'], ['sockstat'], ['metrics'], ['top', '-n', '1']]) {
    const r = await cli(...args);
    assert.equal(r.status, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.equal(r.stdout, '', args.join(' '));
    assert.match(r.stderr, /no running slabnet system/, args.join(' '));
  }
  const s = await cli('systems');
  assert.equal(s.status, 1);
});

test('one system: netstat -m equals its own figures; sysctl writes reach it; the other reports', async () => {
  const ctl = await openControl(a, { name: 'alpha', dir });
  try {
    const m = await cli('netstat', '-m');
    assert.equal(m.status, 0, m.stderr);
    assert.equal(m.stdout, netstatM(a.mb), 'the running system\'s netstat -m (idle, so stable)');
    const before = a.mb.zClust.getMaxItems();
    const set = await cli('sysctl', 'kern.ipc.nmbclusters=1000');
    assert.equal(set.status, 0, set.stderr);
    assert.equal(set.stdout, `kern.ipc.nmbclusters: ${before} -> 1000\n`);
    assert.equal(a.mb.zClust.getMaxItems(), 1000, 'the running system has the new limit');
    const get = await cli('sysctl', 'kern.ipc.nmbclusters');
    assert.equal(get.stdout, 'kern.ipc.nmbclusters: 1000\n');
    assert.match((await cli('netstat', '-m')).stdout, /^\d+\/\d+\/\d+\/1000 mbuf clusters in use/m);
    const bad = await cli('sysctl', 'kern.nosuch', 'vm.stats.page.size=3');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /unknown oid 'kern.nosuch'/);
    assert.match(bad.stderr, /read only/);
    const all = await cli('sysctl', '-a');
    assert.ok(all.stdout.split('\n').length > 100);
    assert.match(all.stdout, /^kern\.ipc\.nmbclusters: 1000$/m);
    assert.match((await cli('sysctl', '--names-only', 'kern.ipc.nmbclusters')).stdout, /^kern\.ipc\.nmbclusters\n$/);
    const z = await cli('vmstat', '-z');
    assert.match(z.stdout, /^ITEM +SIZE +LIMIT +USED +FREE +REQ +FAIL +SLEEP +XDOMAIN\n/);
    assert.match(z.stdout, /^mbuf_cluster: +2048, +1000,/m);
    const an = await cli('netstat', '-an');
    assert.equal(an.stdout.split('\n').filter((l) => /^udp4 .*\*\.7 +\*\.\*/.test(l)).length, 2, an.stdout);
    const s = await cli('netstat', '-s', '-p', 'udp');
    assert.match(s.stdout, /^host0:\nudp:\n/);
    const i = await cli('netstat', '-i');
    assert.equal(i.stdout, a.system.netstatI() + '\n');
    assert.match((await cli('netstat', '-r')).stdout, /^10\.0\.0\.0\/24 +link#2 +US +xl0\/host1$/m);
    const mac0 = macToString(a.system.stacks[0].interfaces[0].mac);
    assert.ok((await cli('arp', '-a')).stdout.split('\n').includes(`? (10.0.0.1) at ${mac0} on xl0/host1 permanent [ethernet]`));
    assert.match((await cli('sockstat')).stdout, /stack +\d+ +\? udp4 +\*:7 +\*:\* +1$/m);
    assert.match((await cli('metrics')).stdout, /^slabnet_mbuf_clusters_max 1000$/m);
    const td = await cli('tcpdrop', '10.0.0.1', '1', '10.0.0.2', '2');
    assert.equal(td.status, 1);
    assert.match(td.stderr, /^tcpdrop: 10\.0\.0\.1 1 10\.0\.0\.2 2: No such process \(ESRCH\)$/m);
    const tda = await cli('tcpdrop', '-a');
    assert.deepEqual([tda.status, tda.stdout], [0, ''], 'no connections to drop');
    const pcap = join(dir, 'cap.pcap');
    assert.equal((await cli('pcap', 'start', '-i', 'xl0/host0', '-w', pcap)).status, 0);
    const stop = await cli('pcap', 'stop', '-i', 'xl0/host0');
    assert.match(stop.stdout, /^0 packets captured on xl0\/host0/);
    assert.equal(readPcap(pcap).records.length, 0);
    assert.match((await cli('systems')).stdout, new RegExp(`^alpha +${process.pid} `, 'm'));
    await cli('sysctl', `kern.ipc.nmbclusters=${before}`);
  } finally {
    await ctl.close();
  }
  assert.equal(existsSync(ctl.path), false);
});

test('two systems: without -N the tools list both; -N name picks one', async () => {
  const ca = await openControl(a, { name: 'alpha', dir });
  const cb = await openControl(b, { name: 'beta', dir });
  try {
    const r = await cli('netstat', '-m');
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /2 slabnet systems are running; say which with -N/);
    assert.match(r.stderr, /alpha \(pid \d+\)/);
    assert.match(r.stderr, /beta \(pid \d+\)/);
    const m = await cli('netstat', '-m', '-N', 'beta');
    assert.equal(m.status, 0, m.stderr);
    assert.equal(m.stdout, netstatM(b.mb));
    const set = await cli('sysctl', '-N', 'beta', 'kern.ipc.nmbclusters=1234');
    assert.equal(set.status, 0, set.stderr);
    assert.equal(b.mb.zClust.getMaxItems(), 1234);
    assert.notEqual(a.mb.zClust.getMaxItems(), 1234, 'the other system is untouched');
    const none = await cli('vmstat', '-z', '-N', 'gamma');
    assert.equal(none.status, 1);
    assert.match(none.stderr, /no slabnet system named or with pid gamma/);
  } finally {
    await ca.close();
    await cb.close();
  }
});

test('a system that does not answer: the tool gives up after its timeout and says so', async () => {
  const { createServer } = await import('node:net');
  const path = join(dir, `slabnet-stuck-${process.pid}.sock`);
  const srv = createServer((c) => c.resume()); // reads, never answers
  await new Promise<void>((res) => srv.listen(path, () => res()));
  try {
    const r = await new Promise<{ status: number | null; stderr: string }>((res) => {
      const p = spawn(process.execPath, [mainJs, 'netstat', '-m'], { env: { ...process.env, SLABNET_CTL_DIR: dir, SLABNET_CTL_TIMEOUT_MS: '300' } });
      let stderr = '';
      p.stderr.on('data', (d) => (stderr += d));
      p.on('close', (status) => res({ status, stderr }));
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^netstat: no answer to netstat within 0\.3 s/m);
  } finally {
    await new Promise<void>((res) => srv.close(() => res()));
  }
});
