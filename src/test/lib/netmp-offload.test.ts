/**
 * The cross-CPU in-memory link is a clean link (net/netisr.ts
 * CrossCpuDriver, MEMLINK_CAPS on both ends, as the single-thread memlink):
 * checksums left to the offload are verified by the link, and TSO chains
 * of up to 64 KiB cross whole to a peer with LRO. A corrupting fault on it
 * makes every frame real first, so each corrupted one is caught and
 * counted. Data moves between the CPUs and the user thread by handle
 * (TCP_READ takes so_rcv's own mbufs; TCP_WRITE within the credit appends
 * the user's chain): both cases are SHA-256 exact, and nothing leaks.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { leakCheck, testUma } from '../helpers.js';
import { System, type LinkOptions } from '../../lib/topology.js';
import { connect, createServer, MpTcp, type MpSocket } from '../../lib/netmp.js';
import { until } from './mpsys.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Send `data` from stack a to b over one link (options `link`) on 2 CPUs; what b received and b's TCP counters summed over the CPUs. */
async function transfer(link: LinkOptions, data: Buffer): Promise<{ got: Buffer; st: Record<string, number> }> {
  const uma = testUma({ size: 128 << 20 });
  const done = leakCheck(uma);
  const sys = await System.start({ cpus: 2, uma });
  try {
    const a = sys.addStack('a');
    const b = sys.addStack('b');
    sys.link(a, b, { a: '10.0.9.1/24', b: '10.0.9.2/24', ...link });
    await sys.up();
    const parts: Buffer[] = [];
    let ended = false;
    const srv = createServer({ stack: b }, (s: MpSocket) => {
      s.on('data', (d: Buffer) => parts.push(d));
      s.on('end', () => (ended = true));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(9, () => r()));
    const c = connect({ stack: a, host: '10.0.9.2', port: 9 });
    c.on('error', () => {});
    c.end(data);
    assert.ok(await until(() => ended, 60_000), 'the receiver saw the end');
    const tcp = MpTcp.of(b);
    const st: Record<string, number> = {};
    for (let cpu = 0; cpu < 2; cpu++) for (const [k, v] of Object.entries(await tcp.stats(cpu))) st[k] = (st[k] ?? 0) + v;
    c.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
    return { got: Buffer.concat(parts), st };
  } finally {
    await sys.stop();
    sys.mb.drainPacketCache();
    done();
  }
}

test('MP link: clean by default, 64 KiB TSO chains cross whole, no software checksum fails; 4 MB SHA-256 exact', { timeout: 90_000 }, async () => {
  const data = randomBytes(4 << 20);
  const { got, st } = await transfer({ mtu: 1500 }, data);
  assert.equal(sha(got), sha(data));
  assert.equal(st.rcvbadsum, 0);
  // An MTU of 1500 carries at most 1460 bytes a segment; more on average means TSO/LRO crossed the CPUs whole.
  const perPacket = st.rcvbyte / st.rcvpack;
  assert.ok(perPacket > 1460, `bytes per received packet ${perPacket.toFixed(0)} > 1460`);
});

test('MP link with a corrupting fault: frames are made real before it, every bad one is caught; 1 MB SHA-256 exact', { timeout: 90_000 }, async () => {
  const data = randomBytes(1 << 20);
  const { got, st } = await transfer({ mtu: 1500, fault: { seed: 7, corrupt: 0.02 } }, data);
  assert.equal(sha(got), sha(data), 'retransmission repaired every corrupted segment');
  assert.ok(st.rcvbadsum > 0, `bad TCP checksums counted: ${st.rcvbadsum}`);
  assert.ok(st.rcvbyte / st.rcvpack <= 1460, 'segments were cut to the MTU before the impairment');
});
