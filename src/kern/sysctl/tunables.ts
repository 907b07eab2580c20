/**
 * Named integer tunables kept in the arena (the header's H_TUNABLES ..
 * H_TUNABLES_END, then an extension page run), so that a limit set in one
 * worker (kern.ipc.nmbclusters, a queue length, net.inet.tcp.*) is one shared
 * Int32 word every thread reads with Atomics.load.
 *
 * Table layout (Int32 indices from H_TUNABLES):
 *   +0  futex word of the table lock (class "sysctl tunables")
 *   +1  number of entries
 *   +2  byte offset of the extension run (0 until the header is full)
 *   +4  entries of TUNABLE_WORDS words: name (NUL-terminated ASCII,
 *       TUNABLE_NAME_BYTES), then the value word, then a spare word.
 * Entries past TUNABLES_HDR live in the extension: TUNABLE_EXT_PAGES pages
 * taken from the page allocator by the thread that creates the first of
 * them, kept for the arena's life (as the mbuf shared region).
 *
 * Locking: the table lock guards only entry creation and lookup (cold); the
 * page allocator's lock (a leaf) is taken under it once, for the extension.
 * The value word itself is read and written with Atomics, no lock.
 */
import type { Arena } from '../../vm/arena.js';
import { H_TUNABLES, H_TUNABLES_END, PAGE_SIZE } from '../../vm/layout.js';
import { PageAllocator } from '../../vm/pages.js';
import { Mutex } from '../lock/mutex.js';
import { Sysctl, SysctlError, SYSCTL_EINVAL, type SysctlNodeSpec } from './sysctl.js';

const T_LOCK = 0;
const T_COUNT = 1;
const T_EXT = 2;
const T_FIRST = 4;
export const TUNABLE_WORDS = 16;
export const TUNABLE_NAME_BYTES = 56;
const T_VALUE = TUNABLE_NAME_BYTES / 4;
/** How many tunables fit in the header region (its last word is the mbuf region's, MB_REGION_WORD). */
export const TUNABLES_HDR = Math.floor((H_TUNABLES_END - 1 - H_TUNABLES - T_FIRST) / TUNABLE_WORDS);
/** Pages of the extension run. */
export const TUNABLE_EXT_PAGES = 2;
/** How many tunables fit in all: the header's, then the extension's. */
export const TUNABLES_MAX = TUNABLES_HDR + (TUNABLE_EXT_PAGES * PAGE_SIZE) / 4 / TUNABLE_WORDS;

/**
 * Int32 index of entry k, taking the extension run when k is its first
 * entry and there is none yet. Called with the table lock held; 0 when no
 * pages are left for the extension.
 */
function entryAt(arena: Arena, k: number, create: boolean): number {
  if (k < TUNABLES_HDR) return H_TUNABLES + T_FIRST + k * TUNABLE_WORDS;
  const i32 = arena.i32;
  let ext = i32[H_TUNABLES + T_EXT];
  if (ext === 0) {
    if (!create) return 0;
    ext = new PageAllocator(arena).allocRun(TUNABLE_EXT_PAGES);
    if (ext === 0) return 0;
    i32.fill(0, ext >> 2, (ext + TUNABLE_EXT_PAGES * PAGE_SIZE) >> 2);
    Atomics.store(i32, H_TUNABLES + T_EXT, ext);
  }
  return (ext >> 2) + (k - TUNABLES_HDR) * TUNABLE_WORDS;
}

/**
 * Int32 index of the value word of tunable `name`, creating it with `initial`
 * when no thread has. Takes the table lock; does not sleep.
 */
export function tunableIndex(arena: Arena, name: string, initial: number): number {
  if (name.length === 0 || name.length >= TUNABLE_NAME_BYTES || !/^[\x21-\x7e]+$/.test(name)) {
    throw new SysctlError(SYSCTL_EINVAL, name, `tunable name must be 1..${TUNABLE_NAME_BYTES - 1} printable characters`);
  }
  if (!Number.isInteger(initial) || initial < -0x8000_0000 || initial > 0x7fff_ffff) {
    throw new SysctlError(SYSCTL_EINVAL, name, `tunable ${name}: initial value must be a 32-bit integer, got ${initial}`);
  }
  const i32 = arena.i32;
  const lock = new Mutex(i32, H_TUNABLES + T_LOCK, 'sysctl tunables');
  lock.lock();
  try {
    const n = i32[H_TUNABLES + T_COUNT];
    for (let k = 0; k < n; k++) {
      const e = entryAt(arena, k, false);
      if (arena.readString(e * 4, TUNABLE_NAME_BYTES) === name) return e + T_VALUE;
    }
    if (n >= TUNABLES_MAX) throw new SysctlError(SYSCTL_EINVAL, name, `no room for tunable ${name}: at most ${TUNABLES_MAX}`);
    const e = entryAt(arena, n, true);
    if (e === 0) throw new SysctlError(SYSCTL_EINVAL, name, `no pages left for tunable ${name}`);
    arena.writeString(e * 4, TUNABLE_NAME_BYTES, name);
    Atomics.store(i32, e + T_VALUE, initial);
    Atomics.store(i32, H_TUNABLES + T_COUNT, n + 1);
    return e + T_VALUE;
  } finally {
    lock.unlock();
  }
}

export interface TunableSpec {
  name: string;
  description: string;
  /** Value when first created (ignored if another thread created it already). */
  initial: number;
  min?: number;
  max?: number;
  /** Read only through sysctl (the owner may still change it with the returned handle). */
  readonly?: boolean;
  /** Runs in the writing thread after the new value is stored (e.g. wake sleepers). */
  onSet?: (value: number) => void;
}

/** A tunable's shared word, for the owning layer's own fast reads. */
export interface Tunable {
  readonly index: number;
  get(): number;
  set(value: number): void;
}

/**
 * Create (or find) an arena-backed int tunable and register it as a sysctl
 * node in this thread's tree. Returns a handle the layer reads on its paths.
 */
export function registerTunable(sysctl: Sysctl, arena: Arena, spec: TunableSpec): Tunable {
  const index = tunableIndex(arena, spec.name, spec.initial);
  const i32 = arena.i32;
  const handle: Tunable = {
    index,
    get: () => Atomics.load(i32, index),
    set: (v: number) => {
      Atomics.store(i32, index, v);
      spec.onSet?.(v);
    },
  };
  const node: SysctlNodeSpec = {
    name: spec.name,
    type: 'int',
    description: spec.description,
    min: spec.min ?? -0x8000_0000,
    max: spec.max ?? 0x7fff_ffff,
    get: handle.get,
  };
  if (!spec.readonly) node.set = (v) => handle.set(v as number);
  sysctl.registerNode(node);
  return handle;
}
