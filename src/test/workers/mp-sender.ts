/**
 * A user worker for the port tests: attaches to the machine, sends `count`
 * CMD_RECORD messages (sendmsg WAITOK, numbered) to a CPU, then checks a
 * domsg echo whose reply must carry its own cookie-derived value.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { attachMachine } from '../../kern/lwkt/user.js';
import { MSG_F_WAITOK } from '../../kern/lwkt/msgport.js';
import { CMD_ECHO, CMD_RECORD } from './mp-handlers.js';
import type { MachineInfo } from '../../kern/lwkt/msgport.js';

const wd = workerData as { info: MachineInfo; sender: number; count: number; cpus: number[]; echoes: number };
let ctx: ReturnType<typeof attachMachine>;
try {
  ctx = attachMachine(wd.info);
} catch (e) {
  parentPort!.postMessage({ refused: -1, wrong: 0, attach: (e as { code?: string }).code });
  process.exit(0);
}
parentPort!.postMessage('started');
let refused = 0;
for (let q = 0; q < wd.count; q++) {
  for (const cpu of wd.cpus) {
    const msg = ctx.allocmsg(CMD_RECORD);
    ctx.setArg(msg, 0, wd.sender);
    ctx.setArg(msg, 1, q);
    if (!ctx.sendmsg(cpu, msg, MSG_F_WAITOK)) {
      ctx.freemsg(msg);
      refused++;
    }
  }
}
let wrong = 0;
for (let i = 0; i < wd.echoes; i++) {
  const cpu = wd.cpus[i % wd.cpus.length];
  const v = wd.sender * 1_000_000 + i;
  const [err, r0, , rcpu] = ctx.call(cpu, CMD_ECHO, [v], 3);
  if (err !== 0 || r0 !== v + 1 || rcpu !== cpu) wrong++;
}
ctx.uma.flushCpuCaches();
parentPort!.postMessage({ refused, wrong });
