// The namespaces tests create live in lib/netns.ts (the benchmarks use them too).
export { NetNs } from '../../lib/netns.js';
