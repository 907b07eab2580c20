// Three stacks in one thread: a and b on two networks, r routes between them.
import { once } from 'node:events';
import { System, statObject, IP_DESC } from 'slabnet';

const sys = System.local(); // one thread, real clock ({ clock: 'manual' } to simulate)
const a = sys.addStack('a');
const r = sys.addStack('r', { forwarding: true });
const b = sys.addStack('b');
sys.link(a, r, { a: '10.0.1.1/24', b: '10.0.1.254/24' });
sys.link(r, b, { a: '10.0.2.254/24', b: '10.0.2.1/24' });
a.setDefaultRoute('10.0.1.254');
b.setDefaultRoute('10.0.2.254');
await sys.up();

const server = sys.socket(b, 'udp4', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
server.bind(7);
const client = sys.socket(a, 'udp4');
client.send('hello through a router', 7, '10.0.2.1');
const [reply, rinfo] = await once(client, 'message');
console.log(`${reply} from ${rinfo.address}:${rinfo.port}, ${statObject(IP_DESC, r.stats().ip).forward} packets forwarded by r`);

client.close();
server.close();
await sys.stop();
