/**
 * Zero-copy writes (allocBuffer + write by reference, lib/zcopy.ts) and
 * Node's onread option on the single-thread Socket, over the in-memory link
 * on the manual clock. Every test stops its system and checks that every
 * zone's `used` is back where it started and no arena Buffer is left.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from '../../lib/net.js';
import { allocBuffer, freeBuffer, ZcArena } from '../../lib/zcopy.js';
import { TCPS_STAT } from '../../netinet/tcp_stats.js';
import { closeServer, collect, netSys, pair, sha, type NetSys } from './netsys.js';





/** Stop, then check no allocBuffer memory is left (the zones are checked by n.stop()). */
async function stopClean(n: NetSys) {
  await n.stop();
  assert.equal(ZcArena.of(n.a.mb).live, 0, 'every allocBuffer allocation given back');
}

test('zero-copy: a 1 MiB arena Buffer goes by reference; its callback waits until the stack freed every piece', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9100);
  const za = ZcArena.of(n.a.mb);
  const pieces0 = za.piecesAttached;
  const buf = allocBuffer(n.a, 1 << 20);
  randomBytes(buf.length).copy(buf);
  const got = collect(server);
  let cbAt = -1;
  let cbErr: Error | null | undefined;
  client.write(buf, (e) => {
    cbErr = e;
    cbAt = got.data().length;
  });
  // Referenced, not copied: a byte changed after write() (before it was sent) is what the peer gets.
  buf[buf.length - 1] ^= 0xff;
  const expect = Buffer.from(buf);
  assert.ok(await n.pump(() => cbAt >= 0, 20_000, 2));
  assert.equal(cbErr ?? null, null);
  assert.ok(za.piecesAttached - pieces0 >= 16, `pieces attached: ${za.piecesAttached - pieces0}`);
  // Every mbuf referencing the buffer is gone, so the client's so_snd holds none of it.
  const row = n.a.tcp.sockets!.list().find((x) => x.id === client.fd)!;
  assert.equal(row.sendQ, 0);
  client.end();
  assert.ok(await n.pump(() => got.ended(), 20_000, 2));
  assert.equal(got.data().length, buf.length);
  assert.equal(sha(got.data()), sha(expect));
  freeBuffer(n.a, buf);
  await closeServer(n, srv);
  await stopClean(n);
});

test('zero-copy: an ordinary Buffer and a short arena Buffer are copied; kern.ipc.zero_copy.send_min and .send are sysctls', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9101);
  const za = ZcArena.of(n.a.mb);
  const nodes = n.a.sysctlNodes();
  const min = nodes.find((x) => x.name === 'kern.ipc.zero_copy.send_min')!;
  const on = nodes.find((x) => x.name === 'kern.ipc.zero_copy.send')!;
  assert.equal(min.get(), 4096);
  assert.equal(on.get(), 1);
  const got = collect(server);
  const pieces0 = za.piecesAttached;
  // A copied write's callback comes once so_snd holds its copy: changing the buffer then changes nothing on the wire.
  const written = async (b: Uint8Array) => {
    let done = false;
    client.write(b, () => (done = true));
    assert.ok(await n.pump(() => done, 5000, 1));
  };
  const plain = randomBytes(200_000);
  const plainCopy = Buffer.from(plain);
  await written(plain);
  plain.fill(0);
  // A short arena Buffer (below send_min) is copied too.
  const small = allocBuffer(n.a, 1000);
  small.fill(0x41);
  await written(small);
  small.fill(0x42);
  // Above send_min but with zero-copy off: copied.
  on.set!(0);
  const big = allocBuffer(n.a, 100_000);
  big.fill(0x43);
  await written(big);
  big.fill(0x44);
  on.set!(1);
  // Raise send_min above the size: copied.
  min.set!(200_000);
  await written(big);
  big.fill(0x45);
  min.set!(4096);
  client.end();
  assert.ok(await n.pump(() => got.ended(), 20_000, 2));
  assert.equal(za.piecesAttached, pieces0, 'nothing went by reference');
  const exp = Buffer.concat([plainCopy, Buffer.alloc(1000, 0x41), Buffer.alloc(100_000, 0x43), Buffer.alloc(100_000, 0x44)]);
  assert.equal(sha(got.data()), sha(exp));
  assert.throws(() => min.set!(-1));
  freeBuffer(n.a, small);
  freeBuffer(n.a, big);
  assert.throws(() => freeBuffer(n.a, big), /not a live Buffer/);
  assert.throws(() => freeBuffer(n.a, plain), /not a live Buffer/);
  await closeServer(n, srv);
  await stopClean(n);
});

test('zero-copy: several writes in a row (slices of one allocation) keep order and each callback comes after its bytes are freed', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9102);
  // The topology stack's method form (sys.addStack's NetStack).
  const na = n.sys.stacks.find((x) => x.name === 'a')!;
  const buf = na.allocBuffer(600_000);
  randomBytes(buf.length).copy(buf);
  const got = collect(server);
  const order: number[] = [];
  for (let i = 0; i < 6; i++) client.write(buf.subarray(i * 100_000, (i + 1) * 100_000), () => order.push(i));
  // freeBuffer before the callbacks: the memory goes back only when the last reference does.
  na.freeBuffer(buf);
  assert.equal(ZcArena.of(n.a.mb).live, 1);
  client.end();
  assert.ok(await n.pump(() => got.ended() && order.length === 6, 20_000, 2));
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  assert.equal(got.data().length, buf.length);
  assert.equal(ZcArena.of(n.a.mb).live, 0, 'given back after the last piece was freed');
  await closeServer(n, srv);
  await stopClean(n);
});

test('zero-copy: backpressure from a paused reader, then the rest flows; the callback waits for the reader', async () => {
  const n = await netSys();
  const { srv, client, server } = await pair(n, 9103);
  server.pause();
  const buf = allocBuffer(n.a, 2 << 20);
  randomBytes(buf.length).copy(buf);
  let done = false;
  const ok = client.write(buf, () => (done = true));
  assert.equal(ok, false, 'write() says wait (the chunk is above the high-water mark)');
  assert.equal(await n.pump(() => done, 2000, 10), false, 'no callback while the reader is paused');
  assert.ok(client.writableLength > 0);
  const got = collect(server);
  server.resume();
  assert.ok(await n.pump(() => done, 30_000, 2));
  client.end();
  assert.ok(await n.pump(() => got.ended(), 10_000, 2));
  assert.equal(sha(got.data()), sha(buf));
  freeBuffer(n.a, buf);
  await closeServer(n, srv);
  await stopClean(n);
});

for (const how of ['resetAndDestroy', 'destroy'] as const) {
  test(`zero-copy: ${how}() with zero-copy writes pending gives their callbacks an error, once the stack freed the pieces; nothing leaks`, async () => {
    const n = await netSys();
    const { srv, client, server } = await pair(n, 9104);
    server.pause();
    const buf = allocBuffer(n.a, 1 << 20);
    buf.fill(0x5a);
    const errs: (Error | null | undefined)[] = [];
    // The first is taken (in part) by so_snd; the second waits in the stream.
    client.write(buf.subarray(0, 512 * 1024), (e) => errs.push(e));
    client.write(buf.subarray(512 * 1024), (e) => errs.push(e));
    await n.pump(() => false, 200, 10);
    assert.equal(errs.length, 0);
    client.on('error', () => {});
    client[how]();
    // Still referenced by the paused reader's so_rcv (the in-memory link passes mbufs by handle): no callback yet.
    await n.pump(() => false, 100, 10);
    assert.equal(errs.length, 1, 'only the write that never reached so_snd failed at once');
    freeBuffer(n.a, buf);
    server.destroy();
    // RST flushed the client's so_snd; the reader's close frees its so_rcv: every callback comes.
    // A graceful close keeps trying to send into the closed window until stop() frees so_snd.
    if (how === 'resetAndDestroy') assert.ok(await n.pump(() => errs.length === 2, 2000, 10));
    await closeServer(n, srv);
    await n.stop();
    await n.settle();
    assert.equal(errs.length, 2);
    for (const e of errs) assert.ok(e instanceof Error, 'an error');
    assert.equal((errs[0] as Error & { code?: string }).code, 'ENOTCONN');
    assert.equal(ZcArena.of(n.a.mb).live, 0);
  });
}

test('onread: data goes into the supplied buffer, callback(nread, buf), no data events; false pauses until resume()', async () => {
  const n = await netSys();
  const box = Buffer.alloc(1500);
  const parts: Buffer[] = [];
  let calls = 0;
  let stop = true;
  const onread = {
    buffer: box,
    callback: (nread: number, b: Uint8Array) => {
      assert.equal(b, box);
      assert.ok(nread > 0 && nread <= box.length);
      parts.push(Buffer.from(box.subarray(0, nread)));
      calls++;
      if (stop) return false;
    },
  };
  const { srv, client, server } = await pair(n, 9105, { onread });
  let dataEvents = 0;
  client.on('data', () => dataEvents++);
  let ended = false;
  client.on('end', () => (ended = true));
  const payload = randomBytes(300_000);
  server.end(payload);
  assert.ok(await n.pump(() => calls === 1, 5000, 2));
  // Paused by the callback: nothing more however long we wait; the window closes.
  await n.pump(() => false, 500, 10);
  assert.equal(calls, 1);
  stop = false;
  client.resume();
  assert.ok(await n.pump(() => ended, 20_000, 2));
  assert.equal(dataEvents, 0);
  assert.ok(calls >= 200, `${calls} callbacks`);
  assert.equal(sha(Buffer.concat(parts)), sha(payload));
  assert.equal(client.bytesRead, payload.length);
  client.end();
  server.destroy();
  await closeServer(n, srv);
  await stopClean(n);
});

test('onread: a buffer function is asked before every read; pause() stops it too; a bad option throws', async () => {
  const n = await netSys();
  let asked = 0;
  let total = 0;
  const { srv, client, server } = await pair(n, 9106, {
    onread: {
      buffer: () => {
        asked++;
        return new Uint8Array(4096);
      },
      callback: (nread: number) => {
        total += nread;
      },
    },
  });
  client.pause();
  server.write(randomBytes(50_000));
  await n.pump(() => false, 300, 10);
  assert.equal(total, 0, 'paused: nothing read');
  client.resume();
  assert.ok(await n.pump(() => total === 50_000, 10_000, 2));
  assert.ok(asked >= 13, `asked ${asked} times`);
  assert.throws(() => connect({ stack: n.a, host: '10.0.0.2', port: 1, onread: { buffer: 5 as never, callback: () => {} } }), /onread/);
  client.destroy();
  server.destroy();
  await closeServer(n, srv);
  await stopClean(n);
});

test('zero-copy: 2% loss, duplication and reordering: retransmissions come from the referenced buffer, byte-exact, callback after the last free', async () => {
  const n = await netSys({ fault: { seed: 11, loss: 0.02, duplicate: 0.01, reorder: 0.02 } });
  const { srv, client, server } = await pair(n, 9107);
  const buf = allocBuffer(n.a, 1 << 20);
  randomBytes(buf.length).copy(buf);
  const got = collect(server);
  let done = false;
  client.write(buf, () => (done = true));
  client.end();
  assert.ok(await n.pump(() => got.ended() && done, 120_000, 5));
  assert.ok(n.a.tcp.stats[TCPS_STAT.sndrexmitpack] > 0, 'some data was retransmitted');
  assert.equal(sha(got.data()), sha(buf));
  freeBuffer(n.a, buf);
  await closeServer(n, srv);
  await stopClean(n);
});
