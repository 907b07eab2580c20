// A userspace TCP proxy: slabnet accepts connections on its own stack (here
// from a second slabnet stack; in a VPN or VM it would be a TAP or user
// device) and relays each one to a server on the kernel's loopback with
// node:net. Bytes flow both ways through Node streams, with backpressure.
import nodeNet from 'node:net';
import { once } from 'node:events';
import { System, net } from 'slabnet';

// The upstream: an ordinary kernel TCP server on 127.0.0.1 that upper-cases what it gets.
const upstream = nodeNet.createServer((c) => c.on('data', (d) => c.write(d.toString().toUpperCase())).on('end', () => c.end()));
upstream.listen(0, '127.0.0.1');
await once(upstream, 'listening');

const sys = System.local();
const client = sys.addStack('client');
const proxy = sys.addStack('proxy');
sys.link(client, proxy, { a: '10.9.0.1/24', b: '10.9.0.2/24' });

// The proxy: every slabnet connection on port 8080 is piped to the upstream, and back;
// allowHalfOpen lets a client that has finished sending still read the whole reply.
const front = net.createServer({ stack: proxy, allowHalfOpen: true }, (s) => {
  const up = nodeNet.connect({ port: upstream.address().port, host: '127.0.0.1', allowHalfOpen: true });
  s.pipe(up).pipe(s);
  const done = () => (s.destroy(), up.destroy());
  s.on('error', done);
  up.on('error', done);
});
front.listen(8080);

const c = net.connect({ stack: client, host: '10.9.0.2', port: 8080 });
c.end('hello through a userspace proxy');
let reply = '';
for await (const chunk of c) reply += chunk;
console.log(`${reply} (via ${c.remoteAddress}:${c.remotePort})`);

await new Promise((r) => front.close(r));
upstream.close();
await sys.stop();
