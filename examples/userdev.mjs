// Two systems joined by user devices: JS code is the wire between them
// (what a VM emulator's NIC, QEMU's socket netdev or a VPN would be).
import { once } from 'node:events';
import { System } from 'slabnet';

const left = System.local();
const right = System.local();
const l = left.addStack('left').addUserDevice('ud0', { addrs: '192.168.7.1/24' });
const r = right.addStack('right').addUserDevice('ud0', { addrs: '192.168.7.2/24' });
let frames = 0;
l.device.onFrame = (frame) => (frames++, r.device.push(frame)); // Ethernet frames, ARP included
r.device.onFrame = (frame) => (frames++, l.device.push(frame));
await Promise.all([left.up(), right.up()]);

const server = right.socket('right', 'udp4', (msg, rinfo) => server.send(msg, rinfo.port, rinfo.address));
server.bind(7);
const client = left.socket('left', 'udp4');
client.send('hello over a JS wire', 7, '192.168.7.2');
const [reply, rinfo] = await once(client, 'message');
console.log(`${reply} from ${rinfo.address}:${rinfo.port} (${frames} frames crossed the wire)`);

client.close();
server.close();
await Promise.all([left.stop(), right.stop()]);
