/**
 * The parked read of lib/tcpcpu.ts (TCP_READ with TCP_READ_WAIT): on an
 * empty so_rcv the CPU keeps the request and answers it when data arrives,
 * with that data, so a reader waits with one message instead of a read, a
 * poll and a read again. One kept read per socket (-EALREADY for a second);
 * closing the socket answers it -ESHUTDOWN. No mbuf leaks (mpSys stop).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mpSys, until } from './mpsys.js';
import { connect, createServer, MpTcp, type MpSocket } from '../../lib/netmp.js';
import { TCP_READ, TCP_READ_WAIT } from '../../lib/tcpcpu.js';
import { EALREADY, ESHUTDOWN } from '../../kern/errno.js';
import { m_copydata } from '../../kern/mbuf/ops.js';

test('parked TCP_READ: kept while so_rcv is empty, answered with the data when it comes; a second is EALREADY; close answers ESHUTDOWN', { timeout: 60_000 }, async () => {
  const m = await mpSys();
  let peer: MpSocket | null = null;
  const srv = createServer({ stack: m.b }, (s) => {
    peer = s;
    s.on('error', () => {});
  });
  srv.listen(7);
  await once(srv, 'listening');
  // A client that never reads by itself (no 'data' listener: the stream issues no reads), so its id is ours to read.
  const c = connect({ stack: m.a, host: '10.0.1.2', port: 7 });
  c.on('error', () => {});
  await once(c, 'connect');
  assert.ok(await until(() => peer !== null), 'accepted');
  const { id, cpu } = c as unknown as { id: number; cpu: number };
  const tcp = MpTcp.of(m.a);
  let answered: number[] | null = null;
  const first = tcp.op(cpu, TCP_READ, id, [1024, TCP_READ_WAIT]).then((r) => (answered = r));
  // Let the CPU take it: with nothing to read it must keep it.
  await until(() => answered !== null, 200);
  assert.equal(answered, null, 'an empty socket keeps the read');
  peer!.write('hello');
  await first;
  const [n, chain] = answered!;
  assert.equal(n, 5, 'answered with the bytes that arrived');
  const got = Buffer.alloc(n);
  m_copydata(m.sys.mb, chain, 0, n, got);
  m.sys.mb.m_freem(chain);
  assert.equal(got.toString(), 'hello');

  const kept = tcp.op(cpu, TCP_READ, id, [1024, TCP_READ_WAIT]);
  const second = await tcp.op(cpu, TCP_READ, id, [1024, TCP_READ_WAIT]);
  assert.equal(second[0], -EALREADY, 'one kept read per socket');
  c.destroy();
  assert.equal((await kept)[0], -ESHUTDOWN, 'closing the socket answers the kept read');
  peer!.destroy();
  await new Promise<void>((r) => srv.close(() => r()));
  await m.stop();
});
