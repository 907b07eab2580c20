/** mbuma: mbufs, clusters and the packet zone on UMA, with the mbuf(9) API. */
export * from './layout.js';
export { M_NOWAIT, M_WAITOK } from '../../uma/flags.js';
export * from './mbuf.js';
export * from './ops.js';
export * from './tags.js';
export { MbufShared } from './shared.js';
export * from './stress.js';
export * from './stats.js';
export * from './sysctl.js';
