// Node's own http.Server on a slabnet stack, and Node's http client on a
// second stack: two hosts in this thread joined by an in-memory link.
import http from 'node:http';
import { System, net, serveHttp, HttpAgent } from 'slabnet';

const sys = System.local(); // one thread, the real clock
const client = sys.addStack('client');
const server = sys.addStack('server');
sys.link(client, server, { a: '10.0.0.1/24', b: '10.0.0.2/24' });

const web = http.createServer((req, res) => res.end(`hello ${req.socket.remoteAddress}, this is ${req.url}\n`));
const listener = net.createServer({ stack: server }).listen(80);
serveHttp(web, listener); // each slabnet connection goes to the http.Server

const agent = new HttpAgent(client, { keepAlive: true }); // both requests share one connection
for (const path of ['/', '/slabnet']) {
  const res = await new Promise((resolve, reject) => http.get({ host: '10.0.0.2', path, agent }, resolve).on('error', reject));
  let body = '';
  for await (const chunk of res) body += chunk;
  process.stdout.write(`${res.statusCode} ${body}`);
}

agent.destroy();
await new Promise((resolve) => listener.close(resolve));
await sys.stop();
