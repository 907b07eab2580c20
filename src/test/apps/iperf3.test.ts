/**
 * The iperf3 protocol of apps/iperf3.ts between two slabnet stacks on an
 * in-memory link limited to 100 Mbit/s (manual clock: the client's test
 * duration is the simulation's time, and the rate keeps the data moved in
 * it small): both directions, several streams, the byte counts
 * each side reports agree with what moved, a second client while a test
 * runs is refused (ACCESS_DENIED), unsupported parameters get SERVER_ERROR.
 * The interoperation with Linux's iperf3 is tcp-linux-iperf3.test.ts.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { netFor } from '../../lib/net.js';
import { netSys } from '../lib/netsys.js';
import { Iperf3Error, Iperf3Server, iperf3Client, streamId, makeCookie, COOKIE_SIZE, type NetLike, type TestReport } from '../../apps/iperf3.js';

test('iperf3 ids and cookies: streams 1, 3, 4, ...; a cookie is 36 base32 characters and a NUL', () => {
  assert.deepEqual([0, 1, 2, 3].map(streamId), [1, 3, 4, 5]);
  const c = makeCookie();
  assert.equal(c.length, COOKIE_SIZE);
  assert.match(c.subarray(0, 36).toString(), /^[a-z2-7]{36}$/);
  assert.equal(c[36], 0);
});

for (const reverse of [false, true]) {
  test(`iperf3 between two slabnet stacks, 3 streams${reverse ? ', reverse (-R)' : ''}: both sides count the same bytes`, async () => {
    const n = await netSys({ fault: { rateBps: 100e6, queueLimit: 256 } });
    const srv = new Iperf3Server(netFor(n.b) as unknown as NetLike);
    const lp = srv.listen();
    await n.pump(() => true, 1);
    await lp;
    let due = Infinity;
    let fire: (() => void) | null = null;
    const schedule = (ms: number, fn: () => void): (() => void) => {
      due = n.sys.now() + ms;
      fire = fn;
      return () => (fire = null);
    };
    const next = srv.next();
    let rep: TestReport | null = null;
    let err: unknown = null;
    iperf3Client(netFor(n.a) as unknown as NetLike, { host: '10.0.0.2', time: 0.5, parallel: 3, len: 16384, reverse, schedule }).then((r) => (rep = r), (e) => (err = e));
    let srep: TestReport | null = null;
    void next.then((r) => (srep = r));
    assert.ok(
      await n.pump(() => {
        if (fire !== null && n.sys.now() >= due) {
          const f = fire;
          fire = null;
          f();
        }
        return (rep !== null && srep !== null) || err !== null;
      }, 20_000),
    );
    assert.equal(err, null);
    const c = rep as unknown as TestReport;
    const s = srep as unknown as TestReport;
    assert.equal(c.sender, !reverse);
    assert.equal(s.sender, reverse);
    assert.deepEqual(c.local.streams.map((x) => x.id), [1, 3, 4]);
    assert.deepEqual(s.local.streams.map((x) => x.id), [1, 3, 4]);
    // Each side's report of the other is what the other counted.
    assert.deepEqual(c.remote, s.local);
    assert.deepEqual(s.remote, c.local);
    const sent = reverse ? s : c;
    const recv = reverse ? c : s;
    assert.ok(recv.bytes > 2_000_000, `only ${recv.bytes} bytes in 0.5 s`);
    // The receiver got what the sender's socket accepted, less what was still in flight at TEST_END.
    assert.ok(recv.bytes <= sent.bytes, `received ${recv.bytes} > sent ${sent.bytes}`);
    assert.ok(sent.bytes - recv.bytes <= 8 << 20, `sent ${sent.bytes}, received ${recv.bytes}`);
    assert.equal(s.params.parallel, 3);
    assert.equal(s.params.reverse === true, reverse);
    const closed = srv.close();
    await n.pump(() => true, 50);
    await closed;
    await n.stop();
  });
}

test('iperf3: a second client during a test gets ACCESS_DENIED; UDP parameters get SERVER_ERROR', async () => {
  const n = await netSys({ fault: { rateBps: 100e6, queueLimit: 256 } });
  const srv = new Iperf3Server(netFor(n.b) as unknown as NetLike);
  const lp = srv.listen();
  await n.pump(() => true, 1);
  await lp;
  let fire: (() => void) | null = null;
  const schedule = (_ms: number, fn: () => void): (() => void) => ((fire = fn), () => (fire = null));
  const na = netFor(n.a) as unknown as NetLike;
  let first: TestReport | null = null;
  iperf3Client(na, { host: '10.0.0.2', time: 1, len: 4096, schedule }).then((r) => (first = r));
  await n.pump(() => fire !== null, 2000);
  let second: unknown = null;
  iperf3Client(na, { host: '10.0.0.2', time: 1, schedule: () => () => undefined }).catch((e) => (second = e));
  assert.ok(await n.pump(() => second !== null, 2000));
  assert.ok(second instanceof Iperf3Error && /ACCESS_DENIED/.test(second.message), String(second));
  fire!();
  assert.ok(await n.pump(() => first !== null, 5000));
  // A UDP test is refused with SERVER_ERROR (the client side here is hand-made: our client only speaks TCP).
  const s = na.connect(5201, '10.0.0.2');
  const got: Buffer[] = [];
  s.on('data', (d) => got.push(d));
  s.once('connect', () => s.write(makeCookie()));
  assert.ok(await n.pump(() => Buffer.concat(got).length >= 1, 2000));
  const body = Buffer.from(JSON.stringify({ udp: true, time: 1, parallel: 1 }));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  s.write(len);
  s.write(body);
  assert.ok(await n.pump(() => Buffer.concat(got).length >= 10, 2000));
  const b = Buffer.concat(got);
  assert.equal(b.readInt8(0), 9); // PARAM_EXCHANGE
  assert.equal(b.readInt8(1), -2); // SERVER_ERROR
  assert.equal(srv.errors.length, 1);
  s.destroy();
  const closed = srv.close();
  await n.pump(() => true, 50);
  await closed;
  await n.stop();
});
