// The multi-queue TAP on the MP core's CPUs, against a real Linux peer. The
// machine runs 3 CPUs; CPU i attaches queue i of one TAP device, polls it on
// its own event loop and transmits on it. The kernel side of the TAP lives
// in a namespace this test creates (10.79.0.1/24; slabnet is 10.79.0.2);
// the test only sends to addresses inside it and deletes it at the end.
// Many UDP flows (one socket per flow, so different source ports) from the
// namespace to an echo server bound on every CPU are all answered; frames
// arrive on more than one queue, and frames that land on a CPU that does
// not own their flow are handed to the owner; `ping` (small and
// fragmenting) works. Needs root and /dev/net/tun; under CI=true it must run
// (skipUnless throws).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { leakCheck, testUma } from '../helpers.js';
import { NetNs } from './netns.js';
import { assertPings, runAsync as run, skipUnless } from './sys.js';
import { startTapNet, formatTapQueues, type TapNet } from '../../lib/tapnet.js';
import { NET_ECHO_BIND, NET_STATS, packIfName, unpackIfName } from '../../net/mpnet.js';
import { statObject, ICMP_DESC, UDP_DESC } from '../../netinet/stats.js';
import { macToString } from '../../wire/ethernet.js';
import { runTapMpDemo } from '../../cli/netdemo.js';

const NCPUS = 3;
const FLOWS = 24;
const ROUNDS = 4;

test('interface names pack into message words and back', () => {
  for (const n of ['', 'a', 'tap0', 'slabnet12345', 'fifteen-bytes-x']) assert.equal(unpackIfName(packIfName(n)), n);
  assert.equal(unpackIfName(packIfName('sixteen-bytes-xx')), 'sixteen-bytes-x');
});

test('multi-queue TAP on 3 CPUs: many UDP flows and ping from a Linux namespace', async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'ping'] });
  if (skip) return t.skip(skip);
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const ns = NetNs.create('tapmq');
  let net: TapNet | null = null;
  try {
    net = await startTapNet({ ncpus: NCPUS, uma, name: `snq${process.pid % 100000}`, addr: '10.79.0.2', prefix: 24, mac: 0x0200_5e00_1003 });
    assert.equal(net.name, `snq${process.pid % 100000}`);
    // The kernel sees one device with one queue per CPU.
    const q = spawnSync('ls', [`/sys/class/net/${net.name}/queues`], { encoding: 'utf8' });
    assert.equal((q.stdout.match(/^rx-\d+$/gm) ?? []).length, NCPUS, q.stdout);
    ns.adopt(net.name, '10.79.0.1/24');
    for (let c = 0; c < NCPUS; c++) assert.deepEqual(await net.machine.call(c, NET_ECHO_BIND, [net.host, 7777]), [0]);
    // CPU 0's gratuitous ARP went out before the kernel side was up (EIO, one tx error): count from here.
    const q0 = await net.queueStats();

    // 1. ping, small and fragmenting (the fragments of one datagram meet on one CPU by the 2-tuple hash).
    await assertPings(ns, '10.79.0.2', 4000);
    assert.match(ns.exec(['ip', 'neigh', 'show', '10.79.0.2']), new RegExp(`lladdr ${macToString(net.mac)}`));

    // 2. FLOWS sockets in the namespace (one source port each), ROUNDS echoes per flow, all at once.
    const script = `
      const d = require('node:dgram');
      let left = ${FLOWS}, ok = 0, bad = 0;
      const t = setTimeout(() => { console.log(JSON.stringify({ ok, bad, timeout: true })); process.exit(1); }, 8000);
      for (let f = 0; f < ${FLOWS}; f++) {
        const s = d.createSocket('udp4');
        let round = 0;
        const send = () => s.send(Buffer.from('flow ' + f + ' round ' + round), 7777, '10.79.0.2');
        s.on('message', (m) => {
          if (m.toString() === 'flow ' + f + ' round ' + round) ok++; else bad++;
          if (++round < ${ROUNDS}) return send();
          s.close();
          if (--left === 0) { clearTimeout(t); console.log(JSON.stringify({ ok, bad })); }
        });
        s.bind(0, send);
      }`;
    let r = await run(ns.argv([process.execPath, '-e', script]));
    assert.equal(r.code, 0, `echo clients: ${r.out}${r.err}`);
    assert.deepEqual(JSON.parse(r.out), { ok: FLOWS * ROUNDS, bad: 0 });

    // 3. Per-queue counters: frames arrived on more than one queue; misplaced ones were handed over.
    const qs = await net.queueStats('10.79.0.1');
    for (const line of formatTapQueues(qs).split('\n')) t.diagnostic(line);
    assert.deepEqual(
      qs.map((x) => x.queue),
      [0, 1, 2],
    );
    const receiving = qs.filter((x) => x.counters.rxframes > 0).length;
    assert.ok(receiving >= 2, `only ${receiving} queue(s) received frames:\n${formatTapQueues(qs)}`);
    const handed = qs.reduce((a, x) => a + x.handedOff, 0);
    assert.equal(handed, qs.reduce((a, x) => a + x.fromOthers, 0), 'every handed-off frame arrived on its owner');
    assert.ok(handed > 0, 'no frame landed on a CPU that does not own its flow (the kernel hash and ours never differed?)');
    // ARP: CPU 0 answered the kernel and forwarded what it learned; every CPU's table has the kernel's MAC.
    const kmac = /link\/ether ([0-9a-f:]{17})/.exec(ns.exec(['ip', 'link', 'show', net.name]))![1];
    t.diagnostic(JSON.stringify(qs.map((x) => [x.arpForwarded, x.arpMac])));
    for (const x of qs) assert.equal(x.arpMac < 0 ? 'none' : macToString(x.arpMac), kmac, `cpu${x.cpu}'s ARP entry for 10.79.0.1`);
    assert.ok(qs.slice(1).every((x) => x.arpForwarded >= 1), `a CPU got no ARP mapping from CPU 0: ${qs.map((x) => x.arpForwarded)}`);
    const served: number[] = [];
    for (let c = 0; c < NCPUS; c++) served.push((await net.machine.call(c, NET_STATS, [net.host], 4))[1]);
    assert.equal(
      served.reduce((a, b) => a + b, 0),
      FLOWS * ROUNDS,
    );
    assert.ok(served.filter((x) => x > 0).length >= 2, `one CPU served every flow: ${served}`);
    // No queue failed a read or a write once the link was up.
    assert.ok(
      qs.every((x, i) => x.counters.rxerrors === 0 && x.counters.txerrors === q0[i].counters.txerrors && x.counters.rxnomem === 0),
      formatTapQueues(qs),
    );
    const st = net.stats();
    assert.equal(statObject(UDP_DESC, st.udp).delivered, FLOWS * ROUNDS);
    assert.ok(statObject(ICMP_DESC, st.icmp).outhist_echoreply >= 5);
  } finally {
    await net?.stop();
    ns.destroy();
  }
  assert.equal(spawnSync('ip', ['link', 'show', `snq${process.pid % 100000}`]).status !== 0, true, 'the device is gone');
  done();
});

test('startTapNet as an unprivileged user fails with ERR_SLABNET_TAP_PERM and stops its CPUs', (t) => {
  const skip = skipUnless({ root: true, tun: true });
  if (skip) return t.skip(skip);
  const mod = fileURLToPath(new URL('../../lib/tapnet.js', import.meta.url));
  const script = `
    process.setgid(65534); process.setuid(65534);
    import(${JSON.stringify(mod)}).then(async ({ startTapNet }) => {
      try { await startTapNet({ ncpus: 2, addr: '10.79.1.2', name: 'snperm1', arenaSize: 32 << 20 }); console.log('opened'); }
      catch (e) { console.log(e.code, e.cpu); }
    });`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.stdout.trim(), 'ERR_SLABNET_TAP_PERM 0', r.stderr);
  assert.equal(r.status, 0, 'the child exited on its own: every CPU stopped');
});

test('slabnet demo --tap: the commands it prints reach the servers on every CPU', async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'ping', 'socat', 'od', 'curl'] });
  if (skip) return t.skip(skip);
  const nsName = `slabnet-demo-${process.pid}`;
  const lines: string[] = [];
  let printed!: () => void;
  const ready = new Promise<void>((r) => (printed = r));
  let finished!: () => void;
  const until = new Promise<void>((r) => (finished = r));
  const demo = runTapMpDemo({
    seconds: 25,
    cpus: 2,
    name: `snd${process.pid % 100000}`,
    until,
    out: (s) => {
      lines.push(s);
      if (s.includes('ip netns del')) printed();
    },
  });
  try {
    await Promise.race([ready, demo.then(() => assert.fail(`the demo ended early:\n${lines.join('\n')}`))]);
    // The printed commands, literally (our namespace name; dig may be missing, its socat twin is run instead).
    const cmds = lines
      .map((l) => l.trim())
      .filter((l) => /^(ip |printf |for )/.test(l) && !l.startsWith('ip netns del') && !l.includes(' dig '))
      .map((l) => l.replace(/\s+#\s.*$/, '').replaceAll('slabnet-peer', nsName));
    assert.equal(cmds.length, 6, cmds.join('\n'));
    const outs: string[] = [];
    for (const c of cmds) {
      const r = await run(['bash', '-c', c]);
      assert.equal(r.code, 0, `${c}\n${r.out}${r.err}`);
      outs.push(r.out);
    }
    assert.match(outs[2], /3 received/);
    assert.match(outs[3], /^ 12 34 85 00/, 'a DNS answer with our id (QR AA RD, no RA: dns.ts)');
    assert.deepEqual(outs[4].trim().split('\n'), Array.from({ length: 8 }, (_, i) => `flow ${i + 1}`));
    assert.equal(outs[5], 'hello from slabnet /hello\n', 'curl reached Node\'s http.Server on slabnet TCP');
  } finally {
    finished();
    const code = await demo;
    spawnSync('ip', ['netns', 'del', nsName], { stdio: 'ignore' });
    assert.equal(code, 0, lines.join('\n'));
  }
  const text = lines.join('\n');
  assert.match(text, /\t9 delivered/, 'one DNS query and 8 echoes reached the servers');
  assert.match(text, /no leaks/);
});
