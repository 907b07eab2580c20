// A program using the API opens a control socket; the tools (slabnet netstat -m,
// slabnet top -N example) attach to it. Here the program asks itself.
import { startNet, openControl, attach } from 'slabnet';

const net = await startNet({ ncpus: 2 });
const ctl = await openControl(net, { name: 'example' });
const { client } = await attach('example');
const m = await client.request('netstat', { report: 'm' });
console.log(m.text.split('\n')[1]);
const set = await client.request('sysctl.set', { name: 'kern.ipc.nmbclusters', value: 1000 });
console.log(`kern.ipc.nmbclusters: ${set.old} -> ${set.new}; the system reads ${net.sysctl.get('kern.ipc.nmbclusters')}`);
client.close();
await ctl.close();
await net.stop();
