/**
 * Send-buffer autosizing (FreeBSD's tcp_sndbuf_autoscale, net.inet.tcp.sendbuf_auto/_inc/_max):
 * an application that keeps so_snd full while the peer's window could take more sees the buffer
 * grow by sendbuf_inc up to sendbuf_max; with sendbuf_auto=0, or after SO_SNDBUF, it stays as set.
 * Without it a path whose MSS is near the buffer size (a 64 KiB MTU link, 32 KiB sendspace) has one
 * segment in flight and waits a delayed ACK per buffer.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { tcpPair, connectPair, tcpLeakCheck } from './tcplink.js';
import { SOL_SOCKET, SO_SNDBUF } from '../../netinet/tcp_api.js';

const out = new Int32Array(2);
const chunk = new Uint8Array(16384).fill(7);

/** Keep writing for `ms` of virtual time while the peer reads everything; returns so_snd's size. */
function fill(opts: { auto: number; userSize?: number; ms: number }): number {
  const done = tcpLeakCheck();
  const p = tcpPair();
  p.a.tcp.cfg.sendbuf_auto = opts.auto;
  const sa = p.a.tcp.sockets!;
  const sb = p.b.tcp.sockets!;
  const [c, s, l] = connectPair(p);
  if (opts.userSize !== undefined) assert.equal(sa.setsockopt(c, SOL_SOCKET, SO_SNDBUF, opts.userSize), 0);
  const buf = new Uint8Array(1 << 16);
  for (let t = 0; t < opts.ms; t++) {
    while (sa.write(c, chunk) > 0);
    p.td.advance(1);
    while (sb.read(s, buf) > 0);
  }
  assert.equal(sa.getsockopt(c, SOL_SOCKET, SO_SNDBUF, out), 0);
  const size = out[0];
  for (const id of [c, s, l]) (id === c ? sa : sb).close(id);
  p.td.advance(200_000);
  p.close();
  done();
  return size;
}

test('tcp: so_snd grows by sendbuf_inc while the application keeps it full, capped by sendbuf_max', () => {
  const start = fill({ auto: 0, ms: 50 });
  const grown = fill({ auto: 1, ms: 50 });
  assert.ok(grown > start, `autosized ${grown} > fixed ${start}`);
  assert.equal((grown - start) % 8192, 0, 'grows in steps of net.inet.tcp.sendbuf_inc');
  assert.ok(grown <= 2097152, 'never above net.inet.tcp.sendbuf_max');
});

test('tcp: a buffer sized with SO_SNDBUF is not autosized', () => {
  assert.equal(fill({ auto: 1, userSize: 20000, ms: 50 }), 20000);
});
