/** The sysctl tree: see sysctl.ts (tree and errors), tunables.ts (arena-backed ints), vm.ts (vm.* nodes). */
export * from './sysctl.js';
export * from './tunables.js';
export * from './vm.js';
