// The blocking socket calls (the *Sync forms) from a real user worker:
// requests by domsg, recvSync sleeping in Atomics.wait until the CPU appends,
// EAGAIN on timeout, EINVAL on a wrong option size; refused in the main thread.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { testUma, leakCheck } from '../helpers.js';
import { Machine } from '../../kern/lwkt/machine.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { socketHandlers } from '../../kern/socket/handlers.js';
import { SocketLayer } from '../../kern/socket/socket.js';
import { IPPROTO_LOOP } from '../../kern/socket/loopdgram.js';
import { sockbufZone } from '../../kern/socket/sockbuf.js';

test('blocking socket calls in a worker; recvSync wakes on data; main thread refused', async () => {
  const uma = testUma({ ncpus: 16, size: 64 << 20 });
  const done = leakCheck(uma);
  const mb = Mbufs.create(uma);
  sockbufZone(uma);
  const m = await Machine.start({ uma, ncpus: 2, handlers: [socketHandlers], spinUs: 0 });
  const layer = new SocketLayer(m.ctx, mb);
  try {
    assert.throws(() => layer.socketSync(IPPROTO_LOOP), { code: 'ERR_SLABNET_INVALID_ARG' });
    const [x, y] = await layer.socketpair(IPPROTO_LOOP);
    assert.throws(() => y.recvSync(1), { code: 'ERR_SLABNET_INVALID_ARG' });
    const w = new Worker(new URL('../workers/mp-syncsock.js', import.meta.url), { workerData: { info: m.info(), so: y.so } });
    const result = await new Promise<Record<string, unknown>>((res, rej) => {
      w.on('message', (msg: { type: string }) => {
        if (msg.type === 'blocking') setTimeout(() => void x.send(Uint8Array.of(9, 8, 7)).catch(rej), 50);
        else res(msg as Record<string, unknown>);
      });
      w.on('error', rej);
    });
    await new Promise((r) => w.on('exit', r));
    assert.equal(result.inOrder, 20, 'all datagrams, in order, with the sender address');
    assert.equal(result.tag, 777);
    assert.equal(result.wrongSize, 'EINVAL');
    assert.equal(result.timeout, 'EAGAIN');
    assert.ok((result.waited as number) >= 25, 'recvSync waited for its timeout');
    assert.equal(result.eof, null, 'EOF after the peer shut down');
    assert.equal(result.closedSend, 'EINVAL');
    assert.deepEqual(result.lent, [9, 8, 7], 'the blocked reader was woken by the append');
    assert.equal(result.open, 0);
    await x.close();
    await y.close();
  } finally {
    await layer.closeAll();
    await m.stop();
  }
  assert.equal(m.failures.length, 0);
  mb.drainPacketCache();
  done();
});
