/**
 * The socket layer's handler module, loaded by the machine in every CPU
 * (Machine.start({ handlers: [socketHandlers] })): registers the PRU_*
 * commands, which find the protocol in the switch and call its handler, and
 * the loop protocol. A protocol without a handler for a request answers
 * EOPNOTSUPP, as pru_*_notsupp does.
 */
import { fileURLToPath } from 'node:url';
import { EOPNOTSUPP, EPROTONOSUPPORT } from '../errno.js';
import type { ProtocolThread } from '../lwkt/protothread.js';
import { Mbufs } from '../mbuf/mbuf.js';
import { loopProtocol } from './loopdgram.js';
import {
  A_PROTO,
  PRU_ACCEPT,
  PRU_ATTACH,
  PRU_BIND,
  PRU_CONNECT,
  PRU_CONNECT2,
  PRU_CTLOUTPUT,
  PRU_DETACH,
  PRU_LISTEN,
  PRU_SEND,
  PRU_SENDOOB,
  PRU_SHUTDOWN,
  allProtocols,
  findProtocol,
  registerProtocol,
  type ProtoSw,
  type PruHandler,
} from './protosw.js';
import { SockBufs } from './sockbuf.js';

/** Path of this module, for MachineOptions.handlers. */
export const socketHandlers = fileURLToPath(import.meta.url);

export function register(td: ProtocolThread): void {
  const mb = Mbufs.attach(td.ctx.uma);
  const sbs = new SockBufs(mb);
  td.layers.set('mbufs', mb);
  td.layers.set('sockbufs', sbs);
  registerProtocol(loopProtocol(mb, sbs));
  const table: [number, string, (p: ProtoSw) => PruHandler | undefined][] = [
    [PRU_ATTACH, 'pru_attach', (p) => p.attach],
    [PRU_DETACH, 'pru_detach', (p) => p.detach],
    [PRU_BIND, 'pru_bind', (p) => p.bind],
    [PRU_CONNECT, 'pru_connect', (p) => p.connect],
    [PRU_CONNECT2, 'pru_connect2', (p) => p.connect2],
    [PRU_LISTEN, 'pru_listen', (p) => p.listen],
    [PRU_ACCEPT, 'pru_accept', (p) => p.accept],
    [PRU_SEND, 'pru_send', (p) => p.send],
    [PRU_SENDOOB, 'pru_sendoob', (p) => p.sendoob],
    [PRU_SHUTDOWN, 'pru_shutdown', (p) => p.shutdown],
    [PRU_CTLOUTPUT, 'pr_ctloutput', (p) => p.ctloutput],
  ];
  for (const [cmd, name, pick] of table) {
    td.register(cmd, name, (t, msg) => {
      const p = findProtocol(t.ctx.arg(msg, A_PROTO));
      if (p === undefined) return EPROTONOSUPPORT;
      const h = pick(p);
      return h === undefined ? EOPNOTSUPP : h(t, msg);
    });
  }
  td.shutdownHooks.push((t) => {
    for (const p of allProtocols()) p.drain?.(t);
    mb.drainPacketCache();
  });
}
