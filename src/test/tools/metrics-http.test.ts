// The Prometheus endpoint on a TCP port of the slabnet stack itself (issue: "metrics export ... on a
// TCP port of the slabnet stack once TCP exists"): a scraper on another stack GETs /metrics over
// slabnet TCP and reads the same counters the control socket gives, and they move with traffic.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { System } from '../../lib/topology.js';
import { HttpAgent } from '../../index.js';
import { serveMetrics } from '../../lib/ctl/index.js';
import { formatMetrics } from '../../kern/ctl/metrics.js';
import { controlView } from '../../lib/ctl/adapter.js';

function get(agent: http.Agent, path: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .request({ host: '10.0.0.2', port: 9100, path, method, agent }, async (res) => {
        let body = '';
        for await (const c of res) body += c;
        resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body });
      })
      .on('error', reject)
      .end();
  });
}

/** The value of one sample line `name{labels} value` in an exposition. */
function sample(text: string, line: RegExp): number {
  const m = text.split('\n').find((l) => line.test(l));
  assert.ok(m, `no sample matching ${line}`);
  return Number(m.slice(m.lastIndexOf(' ') + 1));
}

test('GET /metrics over slabnet TCP: Prometheus text, the control socket exposition, counters that move; 404 and 405', async () => {
  const sys = System.local();
  const scraper = sys.addStack('scraper');
  const server = sys.addStack('server');
  sys.link(scraper, server, { a: '10.0.0.1/24', b: '10.0.0.2/24' });
  await sys.up();
  const m = await serveMetrics(sys, server.stack, { port: 9100 });
  const agent = new HttpAgent(scraper, { keepAlive: true });
  try {
    const first = await get(agent, '/metrics');
    assert.equal(first.status, 200);
    assert.match(first.type, /^text\/plain; version=0\.0\.4/);
    assert.match(first.body, /^# TYPE slabnet_zone_used_items gauge$/m);
    assert.match(first.body, /^slabnet_mbuf_clusters_max \d+$/m);
    // The same exposition as the control socket's "metrics" op, sample names alike.
    const names = (t: string) => new Set(t.split('\n').filter((l) => l.startsWith('# TYPE')));
    assert.deepEqual(names(first.body), names(await formatMetrics(controlView(sys))));
    // The scrape itself is TCP traffic: the mbuf zone's request count grows between two scrapes.
    const zoneReq = /^slabnet_zone_requests_total\{zone="mbuf"\} /;
    const second = await get(agent, '/metrics');
    assert.ok(sample(second.body, zoneReq) > sample(first.body, zoneReq));
    assert.equal((await get(agent, '/nope')).status, 404);
    assert.equal((await get(agent, '/metrics', 'POST')).status, 405);
    const head = await get(agent, '/metrics', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  } finally {
    agent.destroy();
    await m.close();
    await sys.stop();
  }
});
