// The HTTP main job's placement: one server address per CPU, each hashing
// (2-tuple Toeplitz, both directions) to that CPU, so that the load
// generator's connections and the server's ends of them spread over every CPU.
import test from 'node:test';
import assert from 'node:assert/strict';
import { serverAddrsPerCpu } from '../../cli/httpdemo.js';
import { rssAddrCpu } from '../../net/rss.js';
import { toAddr } from '../../netinet/stack.js';

test('serverAddrsPerCpu: address c reaches CPU c from both ends of the connection', () => {
  const cl = toAddr('10.0.0.1');
  assert.deepEqual(serverAddrsPerCpu(1), ['10.0.0.2']);
  for (let n = 2; n <= 8; n++) {
    const addrs = serverAddrsPerCpu(n);
    assert.equal(addrs.length, n);
    assert.equal(new Set(addrs).size, n, `distinct addresses for ${n} CPUs: ${addrs.join(' ')}`);
    addrs.forEach((a, c) => {
      assert.equal(rssAddrCpu(toAddr(a), cl, n), c, `${a}: the client's end on CPU ${c} of ${n}`);
      assert.equal(rssAddrCpu(cl, toAddr(a), n), c, `${a}: the server's end on CPU ${c} of ${n}`);
    });
  }
});
