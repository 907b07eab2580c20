/** A user worker that makes one blocking call (domsg) to a CPU and posts [errno, results...]. */
import { parentPort, workerData } from 'node:worker_threads';
import { attachMachine } from '../../kern/lwkt/user.js';
import type { MachineInfo } from '../../kern/lwkt/msgport.js';

const wd = workerData as { info: MachineInfo; cpu: number; cmd: number; args: number[] };
const ctx = attachMachine(wd.info);
parentPort!.postMessage('calling');
const r = ctx.call(wd.cpu, wd.cmd, wd.args, 1);
ctx.uma.flushCpuCaches();
parentPort!.postMessage(r);
