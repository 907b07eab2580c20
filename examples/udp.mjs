// The stack on two worker CPUs: host 1 runs a UDP echo server, the main
// thread talks to it from host 0 with a node:dgram-shaped socket.
import { once } from 'node:events';
import { startNet, createSocket } from 'slabnet';

const net = await startNet({ ncpus: 2 }); // hosts 10.0.0.1 and 10.0.0.2, in-memory link
const server = createSocket(net.layer, { type: 'udp4', host: 1 }, (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
server.bind(7);
await once(server, 'listening');

const client = createSocket(net.layer, { type: 'udp4', host: 0 });
client.send(Buffer.from('hello, slabnet'), 7, '10.0.0.2');
const [reply, rinfo] = await once(client, 'message');
console.log(`${reply} from ${rinfo.address}:${rinfo.port}`);

for (const s of [client, server]) {
  s.close();
  await s.settled();
}
await net.stop();
