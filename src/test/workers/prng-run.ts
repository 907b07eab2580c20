/**
 * One "boot" for the per-boot secret tests, run as its own process: a
 * single-thread stack prints its first IP IDs and ephemeral ports as JSON.
 */
import { Uma } from '../../uma/uma.js';
import { Mbufs } from '../../kern/mbuf/mbuf.js';
import { Stack } from '../../netinet/stack.js';
import { LocalThread } from '../../kern/lwkt/netthread.js';

const uma = Uma.create({ size: 16 << 20, ncpus: 2 });
const mb = Mbufs.create(uma);
const st = new Stack(mb, { name: 'boot', seed: 1, thread: LocalThread.manual() });
const ids: number[] = [];
for (let i = 0; i < 8; i++) ids.push(st.nextIpId());
const ports: number[] = [];
for (let i = 0; i < 4; i++) {
  const pcb = st.udp.attach();
  if (st.udp.bind(pcb, 0, 0) !== 0) throw new Error('bind');
  ports.push(pcb.lport);
}
st.close();
process.stdout.write(JSON.stringify({ ids, ports }) + '\n');
