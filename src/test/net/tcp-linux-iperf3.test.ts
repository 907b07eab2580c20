// Linux iperf3 against slabnet over TAP (with the TAP's offloads: GSO
// frames both ways). The kernel side is in a namespace this test creates
// (10.77.8.1/24; slabnet is .2):
// - Linux `iperf3 -c` against slabnet's iperf3 server (apps/iperf3.ts),
//   client sending and -R (slabnet sending), 2 streams;
// - slabnet's iperf3 client against Linux `iperf3 -s -1`, both directions.
// iperf3's JSON must report no error; the receiver's byte count that iperf3
// prints is exactly what the receiving side counted; the sender's is at
// least that and exceeds it by no more than what can be in flight (socket
// buffers); slabnet's TCP counters saw at least those bytes. Needs root,
// /dev/net/tun and iperf3; under CI=true it must run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { skipUnless } from './sys.js';
import { linuxTcp, spawnIn, waitFor, type LinuxTcp } from './tcplinux.js';
import { Iperf3Server, iperf3Client, type NetLike } from '../../apps/iperf3.js';

const SECONDS = 2;
/** What may be in flight when the client stops: both socket buffers (1 MB so_rcv here, Linux's autotuned ones up to 6 MB) and a block. */
const IN_FLIGHT = 24 << 20;

interface Iperf3Json {
  error?: string;
  end: { sum_sent: { bytes: number }; sum_received: { bytes: number } };
}

function parse(out: string, err: string): Iperf3Json {
  let j: Iperf3Json;
  try {
    j = JSON.parse(out) as Iperf3Json;
  } catch {
    throw new Error(`iperf3 printed no JSON: ${out.slice(0, 400)} ${err.slice(0, 400)}`);
  }
  assert.equal(j.error, undefined, `iperf3: ${j.error}`);
  return j;
}

function inFlightOk(sent: number, received: number, what: string): void {
  assert.ok(received > 0, `${what}: nothing received`);
  assert.ok(received <= sent, `${what}: received ${received} > sent ${sent}`);
  assert.ok(sent - received <= IN_FLIGHT, `${what}: sent ${sent}, received ${received}`);
}

function gbps(bytes: number, s: number): string {
  return `${((bytes * 8) / s / 1e9).toFixed(2)} Gbit/s`;
}

async function withFixture(tag: string, fn: (f: LinuxTcp) => Promise<void>): Promise<void> {
  const f = await linuxTcp(tag, 8);
  try {
    await fn(f);
  } finally {
    await f.close();
  }
}

test('Linux iperf3 -c against the slabnet iperf3 server over TAP, both directions (-R), 2 streams: byte counts agree', { timeout: 120_000 }, async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'iperf3'] });
  if (skip) return t.skip(skip);
  await withFixture('ip3s', async (f) => {
    const srv = new Iperf3Server(f.net as unknown as NetLike);
    f.defer(() => srv.close());
    await srv.listen();
    for (const reverse of [false, true]) {
      const before = f.tcpStats();
      const next = srv.next();
      const p = spawnIn(f.ns.argv(['timeout', '60', 'iperf3', '-c', f.us, '-t', String(SECONDS), '-P', '2', '-J', ...(reverse ? ['-R'] : [])]), 70_000, { fixture: f });
      const r = await p.done;
      assert.equal(r.code, 0, `iperf3 -c${reverse ? ' -R' : ''}: ${r.out.slice(-600)} ${r.err}`);
      const j = parse(r.out, r.err);
      const rep = await next;
      assert.deepEqual(srv.errors, []);
      assert.equal(rep.sender, reverse);
      assert.equal(rep.local.streams.length, 2);
      const after = f.tcpStats();
      if (!reverse) {
        // iperf3 prints as "receiver" exactly what our server counted and reported.
        assert.equal(j.end.sum_received.bytes, rep.bytes);
        inFlightOk(j.end.sum_sent.bytes, rep.bytes, 'Linux -> slabnet');
        assert.ok(after.rcvbyte - before.rcvbyte >= rep.bytes, `tcps_rcvbyte grew ${after.rcvbyte - before.rcvbyte} < ${rep.bytes}`);
        t.diagnostic(`iperf3 -c (Linux -> slabnet): ${gbps(rep.bytes, rep.seconds)}, sender ${j.end.sum_sent.bytes} B, receiver ${rep.bytes} B`);
      } else {
        // -R: iperf3 prints as "sender" exactly what our server said it sent.
        assert.equal(j.end.sum_sent.bytes, rep.bytes);
        inFlightOk(rep.bytes, j.end.sum_received.bytes, 'slabnet -> Linux');
        assert.ok(after.sndbyte + after.sndrexmitbyte - before.sndbyte - before.sndrexmitbyte >= j.end.sum_received.bytes);
        t.diagnostic(`iperf3 -c -R (slabnet -> Linux): ${gbps(j.end.sum_received.bytes, rep.seconds)}, sender ${rep.bytes} B, receiver ${j.end.sum_received.bytes} B`);
      }
    }
  });
});

test('slabnet iperf3 client against Linux iperf3 -s over TAP, both directions: byte counts agree', { timeout: 120_000 }, async (t) => {
  const skip = skipUnless({ root: true, tun: true, tools: ['ip', 'iperf3'] });
  if (skip) return t.skip(skip);
  await withFixture('ip3c', async (f) => {
    for (const reverse of [false, true]) {
      let out = '';
      // -1: one test, then exit (printing its JSON).
      const p = spawnIn(f.ns.argv(['timeout', '60', 'iperf3', '-s', '-1', '-J', '-B', f.peer]), 70_000, { fixture: f, onStdout: (d) => (out += d) });
      await waitFor(() => f.ns.exec(['ss', '-ltn']).includes(':5201'), 10_000, 'iperf3 -s to listen');
      const rep = await iperf3Client(f.net as unknown as NetLike, { host: f.peer, time: SECONDS, reverse });
      const r = await p.done;
      assert.equal(r.code, 0, `iperf3 -s: ${out.slice(-600)} ${r.err}`);
      const j = parse(out, r.err);
      const remote = rep.remote.streams.reduce((a, s) => a + s.bytes, 0);
      if (!reverse) {
        // Linux's server counted what it received, told us, and printed the same.
        assert.equal(j.end.sum_received.bytes, remote);
        inFlightOk(rep.bytes, remote, 'slabnet -> Linux');
        t.diagnostic(`slabnet iperf3 client -> Linux iperf3 -s: ${gbps(remote, rep.seconds)}, sent ${rep.bytes} B, Linux received ${remote} B`);
      } else {
        assert.equal(j.end.sum_sent.bytes, remote);
        inFlightOk(remote, rep.bytes, 'Linux -> slabnet');
        t.diagnostic(`slabnet iperf3 client -R <- Linux iperf3 -s: ${gbps(rep.bytes, rep.seconds)}, Linux sent ${remote} B, received ${rep.bytes} B`);
      }
    }
  });
});
