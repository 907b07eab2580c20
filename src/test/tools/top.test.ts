// `slabnet top` in a real terminal: tmux runs it against a system on two
// worker CPUs that this test keeps loaded; the screen (capture-pane) shows
// per-CPU load, interface rates, zones with limits, clusters against
// nmbclusters, sockets and drops, its figures change from one refresh to
// the next, and q quits with status 0. renderTop is also checked directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startNet } from '../../lib/netuser.js';
import { openControl } from '../../lib/ctl/index.js';
import { NET_ECHO_BIND, NET_LOADGEN } from '../../net/mpnet.js';
import { HOST1 } from '../../lib/netuser.js';
import { renderTop, si, type TopSnapshot } from '../../cli/top.js';
import { testUma } from '../helpers.js';

const mainJs = fileURLToPath(new URL('../../cli/main.js', import.meta.url));
const hasTmux = spawnSync('tmux', ['-V']).status === 0;

function snapshot(t: number, handled: number, busyUs: number, ipk: number): TopSnapshot {
  const z = { name: 'mbuf_cluster', size: 2048, limit: 1000, used: 250, free: 10, requests: ipk, fails: 0, sleeps: 0, xdomain: 0, items: 260, bucketSize: 0, pages: 0, limitHits: 0 };
  return {
    time: t,
    ncpus: 1,
    cpus: [{ cpu: 0, handled, busyUs, sleeps: 0 }],
    interfaces: [{ name: 'xl0/host0', counters: { ipackets: ipk, ibytes: ipk * 100, ierrors: 0, iqdrops: 0, opackets: ipk, obytes: ipk * 100, oerrors: 0, oqdrops: 0 } }],
    zones: [z as TopSnapshot['zones'][number]],
    mbuf: { mbufCount: 3, mbufFree: 1, mbufFailures: 0, mbufSleeps: 0, clusterCount: 250, clusterFree: 0, clusterLimit: 1000, clusterFailures: 0, clusterSleeps: 0, packetCount: 0, packetFree: 0, packetFailures: 0, packetSleeps: 0, jumbo: [], bytesInUse: 0, bytesInCache: 0, sfbufsDenied: 0, sfbufsDelayed: 0, types: [] },
    nmbclusters: 1000,
    drops: { 'udp.fullsock': 5, 'udp.noport': 0 },
    sockets: { 'udp4 bound': 2, 'udp4 connected': 1 },
  };
}

test('renderTop: rates from two snapshots, bars against limits, drops by reason', () => {
  const meta = { name: 'x', pid: 1, started: 0 };
  const a = snapshot(1000, 100, 0, 0);
  const b = snapshot(2000, 5100, 500_000, 2000);
  const s = renderTop(meta, a, b, 100, 40);
  assert.match(s, /^ {2}0 \[#{15} {15}\] +50\.0% +5000 /m, s);
  assert.match(s, /^xl0\/host0 +2000 +2000 +1\.6M +1\.6M +2000 +2000$/m);
  assert.match(s, /clusters 250\/1000 \[#{5} {15}\]/);
  assert.match(s, /^mbuf_cluster +\[#{5} {15}\] +250 +10 +1000 +2000 +0$/m);
  assert.match(s, /^Sockets: udp4 bound 2 {3}udp4 connected 1$/m);
  assert.match(s, /^Drops: udp\.fullsock 5$/m);
  const first = renderTop(meta, null, b, 100, 40);
  assert.match(first, /^ {2}0 \[ {30}\] +0\.0% +0 /m, 'no rates on the first frame');
  assert.equal(si(1234567), '1.2M');
  assert.equal(si(999), '999');
});

function tmux(sock: string, ...args: string[]): string {
  return execFileSync('tmux', ['-L', sock, ...args], { encoding: 'utf8' });
}

test('top in tmux: live figures that change, and q quits', { skip: hasTmux ? false : 'tmux is not installed (scripts/install-system-deps.sh)' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sltop-'));
  const sock = `sltop${process.pid}`;
  const sys = await startNet({ ncpus: 2, uma: testUma({ size: 96 << 20, ncpus: 6, debug: false }) });
  let running = true;
  let load: Promise<void> = Promise.resolve();
  try {
    for (let c = 0; c < 2; c++) await sys.machine.call(c, NET_ECHO_BIND, [1, 7]);
    const ctl = await openControl(sys, { name: 'toptest', dir });
    // Keep both CPUs busy until the end.
    load = (async () => {
      while (running) await Promise.all([0, 1].map((c) => sys.machine.call(c, NET_LOADGEN, [0, HOST1, 7, 200, 8, 64, -1], 4)));
    })();
    const cmd = `SLABNET_CTL_DIR=${dir} ${process.execPath} ${mainJs} top -s 0.5; echo TOP-EXIT=$?; sleep 60`;
    tmux(sock, 'new-session', '-d', '-s', 'top', '-x', '120', '-y', '50', cmd);
    const screen = (): string => tmux(sock, 'capture-pane', '-p', '-t', 'top');
    const waitFor = async (re: RegExp, what: string): Promise<string> => {
      for (let i = 0; i < 150; i++) {
        const s = screen();
        if (re.test(s)) return s;
        await sleep(100);
      }
      assert.fail(`${what} never appeared; screen:\n${screen()}`);
    };
    const s1 = await waitFor(/^xl0\/host1 +[1-9]/m, 'a frame with rates');
    assert.match(s1, /^slabnet top: toptest \(pid \d+\), 2 CPUs/m);
    assert.match(s1, /^ {2}0 \[#*\s*\] +\d+\.\d% +\S+ +\S+$/m);
    assert.match(s1, /^ {2}1 \[#*\s*\] +\d+\.\d% +\S+ +\S+$/m);
    assert.match(s1, /^xl0\/host0 +\S+ +\S+ +\S+ +\S+ +\d+ +\d+$/m);
    assert.match(s1, /clusters \d+\/\d+ \[/);
    assert.match(s1, /^mbuf_cluster +\[[# ]+\] +\d+ +\d+ +\d+ /m);
    assert.match(s1, /^Sockets: udp4 bound 2/m);
    assert.match(s1, /^Drops: /m);
    const inCount = (s: string): number => Number(/^xl0\/host1 +\S+ +\S+ +\S+ +\S+ +(\d+)/m.exec(s)?.[1]);
    // A later refresh shows more input packets (the load keeps running).
    let s2 = screen();
    for (let i = 0; i < 150 && !(inCount(s2) > inCount(s1)); i++) {
      await sleep(100);
      s2 = screen();
    }
    assert.ok(inCount(s2) > inCount(s1), `input packets grow: ${inCount(s1)} then ${inCount(s2)}`);
    tmux(sock, 'send-keys', '-t', 'top', 'q');
    const end = await waitFor(/TOP-EXIT=\d+/, 'the exit of top');
    assert.match(end, /TOP-EXIT=0/);
    await ctl.close();
  } finally {
    running = false;
    spawnSync('tmux', ['-L', sock, 'kill-server']);
    await load;
    await sys.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
