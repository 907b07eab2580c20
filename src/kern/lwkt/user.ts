/**
 * Attaching a user worker (not a CPU) to a running machine: it gets its own
 * arena CPU slot and UMA caches and a MsgContext whose domsg blocks that
 * worker (Atomics.wait) until the owning CPU replies.
 */
import { Arena } from '../../vm/arena.js';
import { Uma } from '../../uma/uma.js';
import { MsgContext, type MachineInfo } from './msgport.js';
import { MC_RSS_KEY } from './layout.js';
import { RSS_KEY_NAMES, useRssKey } from '../../net/rss.js';

/**
 * Attach this thread (a worker) to the machine described by `info`. Throws
 * ErrnoError ESHUTDOWN when that machine has stopped already, and
 * ArgumentError when this worker hashes with another machine's RSS key
 * (net/rss.ts useRssKey: a worker keeps the key of the first machine).
 */
export function attachMachine(info: MachineInfo): MsgContext {
  const arena = Arena.attach(info.sab);
  arena.registerCpu();
  const uma = Uma.attach(arena);
  const ctx = new MsgContext(uma, info.record, -1, info.magic, true);
  // The worker computes flow CPUs (netuser's placement) as the machine's CPUs do.
  useRssKey(RSS_KEY_NAMES[Atomics.load(arena.i32, (info.record >> 2) + MC_RSS_KEY)]);
  return ctx;
}
