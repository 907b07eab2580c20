// The socket layer end to end over the loop protocol: requests as messages to
// the owning CPU, datagrams through the receive sockbuf, options with early
// copy-in / late copy-out, EINVAL on wrong sizes, clean stop with sockets open.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { testUma, leakCheck } from '../helpers.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { socketHandlers } from '../../kern/socket/handlers.js';
import { SocketLayer } from '../../kern/socket/socket.js';
import { IPPROTO_LOOP, LOOP_LEVEL, LOOP_TAG } from '../../kern/socket/loopdgram.js';
import { SOL_SOCKET, SO_LINGER, SO_RCVBUF } from '../../kern/socket/sockopt.js';
import { sockbufZone } from '../../kern/socket/sockbuf.js';

async function setup(ncpus = 2) {
  const uma = testUma({ ncpus: 16, size: 64 << 20 });
  const done = leakCheck(uma);
  const mb = Mbufs.create(uma);
  sockbufZone(uma);
  const m = await Machine.start({ uma, ncpus, handlers: [socketHandlers], spinUs: 0 });
  const layer = new SocketLayer(m.ctx, mb);
  const finish = async () => {
    await layer.closeAll();
    await m.stop();
    assert.equal(m.failures.length, 0);
    mb.drainPacketCache();
    done();
  };
  return { m, layer, mb, finish };
}

test('socketpair: datagrams with the sender address, in order, then EOF after shutdown', async () => {
  const { layer, finish } = await setup();
  const [a, b] = await layer.socketpair(IPPROTO_LOOP);
  assert.equal(a.cpu, b.cpu);
  for (let i = 0; i < 50; i++) await a.send(Uint8Array.from({ length: 10 + i * 37 }, (_, k) => (k + i) & 0xff));
  for (let i = 0; i < 50; i++) {
    const d = (await b.recv())!;
    assert.equal(d.data.length, 10 + i * 37);
    assert.equal(d.data[0], i & 0xff);
    assert.equal(new DataView(d.from!.buffer).getUint32(0), a.pcb);
  }
  await b.send(Uint8Array.of(1, 2, 3));
  assert.deepEqual([...(await a.recv())!.data], [1, 2, 3]);
  await a.shutdown();
  assert.equal(await b.recv(), null);
  await assert.rejects(a.send(Uint8Array.of(1)), { code: 'EPIPE' });
  await a.close();
  await b.close();
  await finish();
});

test('socket options: copy-in/copy-out, EINVAL on wrong sizes, ENOBUFS above maxsockbuf', async () => {
  const { layer, finish } = await setup();
  const [a, b] = await layer.socketpair(IPPROTO_LOOP);
  const value = new Uint8Array(new Int32Array([12345]).buffer);
  await a.setsockopt(LOOP_LEVEL, LOOP_TAG, value);
  value.fill(0); // the handler copied it in already: changing ours afterwards changes nothing
  assert.equal(await a.getsockoptInt(LOOP_LEVEL, LOOP_TAG), 12345);
  assert.equal(await b.getsockoptInt(LOOP_LEVEL, LOOP_TAG), 0);
  await a.setsockoptInt(SOL_SOCKET, SO_RCVBUF, 100000);
  assert.equal(await a.getsockoptInt(SOL_SOCKET, SO_RCVBUF), 100000);
  await assert.rejects(a.setsockoptInt(SOL_SOCKET, SO_RCVBUF, 64 << 20), { code: 'ENOBUFS' });
  await assert.rejects(a.setsockopt(LOOP_LEVEL, LOOP_TAG, new Uint8Array(2)), { code: 'EINVAL' });
  await assert.rejects(a.setsockopt(SOL_SOCKET, SO_RCVBUF, new Uint8Array(8)), { code: 'EINVAL' });
  await assert.rejects(a.getsockopt(SOL_SOCKET, SO_RCVBUF, 2), { code: 'EINVAL' });
  await assert.rejects(a.getsockopt(SOL_SOCKET, SO_LINGER, 4), { code: 'EINVAL' });
  await assert.rejects(a.setsockopt(SOL_SOCKET, 0x7777, new Uint8Array(4)), { code: 'ENOPROTOOPT' });
  await a.setsockopt(SOL_SOCKET, SO_LINGER, new Uint8Array(new Int32Array([1, 30]).buffer));
  const l = new Int32Array((await a.getsockopt(SOL_SOCKET, SO_LINGER, 8)).buffer);
  assert.deepEqual([...l], [1, 30]);
  await finish();
});

test('a full receive buffer drops datagrams with ENOBUFS and leaks nothing', async () => {
  const { layer, finish } = await setup(1);
  const [a, b] = await layer.socketpair(IPPROTO_LOOP);
  await b.setsockoptInt(SOL_SOCKET, SO_RCVBUF, 8192);
  let sent = 0;
  let dropped = 0;
  for (let i = 0; i < 20; i++) {
    try {
      await a.send(new Uint8Array(1000));
      sent++;
    } catch (e) {
      assert.equal((e as { code: string }).code, 'ENOBUFS');
      dropped++;
    }
  }
  assert.equal(sent, 8);
  assert.equal(dropped, 12);
  for (let i = 0; i < sent; i++) assert.equal((await b.recv())!.data.length, 1000);
  await finish();
});

test('unsupported requests answer EOPNOTSUPP / EPROTONOSUPPORT; stop with data queued and sockets open frees everything', async () => {
  const { m, layer, finish } = await setup();
  await assert.rejects(layer.socket(99), { code: 'EPROTONOSUPPORT' });
  const pairs = await Promise.all([layer.socketpair(IPPROTO_LOOP), layer.socketpair(IPPROTO_LOOP), layer.socketpair(IPPROTO_LOOP)]);
  for (const [a] of pairs) for (let i = 0; i < 20; i++) await a.send(new Uint8Array(3000));
  const r = await layer.request(pairs[0][0].cpu, 205 /* PRU_LISTEN */, [IPPROTO_LOOP, pairs[0][0].pcb]);
  assert.equal(r.err, 45 /* EOPNOTSUPP */);
  await m.stop(); // the CPUs drop their PCBs; the sockets are closed by finish()
  await finish();
});
