/**
 * The control socket for programs using the API (opt-in):
 *
 *   const net = await startNet({ ncpus: 2 });
 *   const ctl = await openControl(net, { name: 'myapp' });   // slabnet netstat -m -N myapp
 *   ...
 *   await ctl.close();   // before net.stop()
 *
 * openControl accepts a System (lib/topology.ts), what startNet or startTapNet
 * return, a bare Machine, or any CtlSystem.
 */
import { ControlServer, type ControlServerOptions } from '../../kern/ctl/server.js';
import type { CtlSystem } from '../../kern/ctl/system.js';
import type { NetSystem } from '../netuser.js';
import type { TapNet } from '../tapnet.js';
import type { System } from '../topology.js';
import type { Machine } from '../../kern/lwkt/machine.js';
import { controlView } from './adapter.js';

export { ControlServer, type ControlServerOptions } from '../../kern/ctl/server.js';
export type { CtlSystem } from '../../kern/ctl/system.js';
export { controlView, machineControl, systemControl, tapNetControl } from './adapter.js';
export { attach, CtlClient, CtlPickError, CtlRemoteError, ctlDir, listControlSockets, pickSystem } from './client.js';

function isCtlSystem(x: unknown): x is CtlSystem {
  return typeof x === 'object' && x !== null && typeof (x as CtlSystem).cpuLoad === 'function' && typeof (x as CtlSystem).hosts === 'function';
}

/** Open a control socket for a running system (main thread). Close it before stopping the system. */
export function openControl(system: System | NetSystem | TapNet | Machine | CtlSystem, opts: ControlServerOptions = {}): Promise<ControlServer> {
  return ControlServer.open(isCtlSystem(system) ? system : controlView(system), opts);
}
export { serveMetrics, type MetricsHttp, type MetricsHttpOptions } from './metrics-http.js';
