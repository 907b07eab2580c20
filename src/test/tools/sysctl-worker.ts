// Worker for sysctl.test.ts: attaches to the arena as a CPU and answers get/set requests on its own tree.
import { parentPort, workerData } from 'node:worker_threads';
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { sysctlFor } from '../../kern/sysctl/vm.js';
import { registerTunable } from '../../kern/sysctl/tunables.js';

interface Request {
  op: 'get' | 'set';
  name: string;
  value?: number | string;
}

const arena = Arena.attach(workerData.sab as SharedArrayBuffer);
arena.registerCpu();
const uma = Uma.attach(arena);
uma.logger = () => {};
const tree = sysctlFor(uma);
registerTunable(tree, arena, { name: 'kern.ipc.test_knob', description: 'test tunable', initial: 1, min: 0, max: 1000 });

parentPort!.on('message', (m: Request) => {
  try {
    if (m.op === 'set') tree.set(m.name, m.value!);
    parentPort!.postMessage({ value: tree.get(m.name), cpu: arena.cpu });
  } catch (e) {
    parentPort!.postMessage({ error: (e as { code?: string }).code ?? String(e) });
  }
});
