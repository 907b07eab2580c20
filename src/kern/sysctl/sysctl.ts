/**
 * The sysctl tree: named, typed nodes (`vm.uma.mbuf.limit.max_items`) read and
 * written at run time, after sysctl(9)/sysctl(8).
 *
 * A tree object is per thread (nodes carry get/set closures, which cannot
 * travel between threads), but every value a node reads or writes lives in the
 * shared arena, so a write made through one thread's tree is seen at once by
 * every other thread's tree. Layers register their nodes with registerNode()
 * (static nodes) or registerProvider() (a subtree computed at lookup time,
 * such as one branch per UMA zone, including zones made by other threads).
 *
 * Locking: the tree itself is thread-local and takes no lock; a node's get/set
 * take whatever lock the value needs (none for single words, read with Atomics).
 * Nothing here sleeps.
 */
import { SlabnetError } from '../errors.js';

export type SysctlType = 'int' | 'string';
export type SysctlValue = number | string;

/** A node as layers register it. */
export interface SysctlNodeSpec {
  /** Dotted name, components of [A-Za-z0-9_%] (e.g. `kern.ipc.nmbclusters`). */
  name: string;
  type: SysctlType;
  description: string;
  get: () => SysctlValue;
  /** Present on writable nodes; receives a value already checked against type/min/max. */
  set?: (value: SysctlValue) => void;
  /** Bounds for int nodes (inclusive). */
  min?: number;
  max?: number;
}

/** What list() and describe() return. */
export interface SysctlEntry {
  name: string;
  type: SysctlType;
  description: string;
  writable: boolean;
  value: SysctlValue;
}

/** errno-like codes (sysctl(3) returns ENOENT, EINVAL, EPERM, EEXIST). */
export const SYSCTL_ENOENT = 'ERR_SLABNET_SYSCTL_ENOENT';
export const SYSCTL_EINVAL = 'ERR_SLABNET_SYSCTL_EINVAL';
export const SYSCTL_EPERM = 'ERR_SLABNET_SYSCTL_EPERM';
export const SYSCTL_EEXIST = 'ERR_SLABNET_SYSCTL_EEXIST';

const ERRNO: Record<string, string> = {
  [SYSCTL_ENOENT]: 'ENOENT',
  [SYSCTL_EINVAL]: 'EINVAL',
  [SYSCTL_EPERM]: 'EPERM',
  [SYSCTL_EEXIST]: 'EEXIST',
};

export class SysctlError extends SlabnetError {
  /** The BSD errno name: ENOENT, EINVAL, EPERM or EEXIST. */
  readonly errno: string;
  readonly oid: string;
  constructor(code: string, oid: string, message: string) {
    super(code, message);
    this.errno = ERRNO[code] ?? 'EINVAL';
    this.oid = oid;
  }
}

const NAME_RE = /^[A-Za-z0-9_%]+(\.[A-Za-z0-9_%]+)*$/;

/**
 * A sysctl-safe name component from free text (a zone name), as FreeBSD's
 * zone_alloc_sysctl does: `.`, `/`, `\`, space and `-` become `_`.
 */
export function ctlName(text: string): string {
  return text.replace(/[./\\ -]/g, '_');
}

interface Provider {
  prefix: string;
  nodes: () => SysctlNodeSpec[];
}

export class Sysctl {
  private readonly nodes = new Map<string, SysctlNodeSpec>();
  private readonly providers: Provider[] = [];

  /**
   * Add one node. The name must be new and must not be an interior node of
   * another name (`a.b` and `a.b.c` cannot both be leaves). Throws EEXIST/EINVAL.
   */
  registerNode(spec: SysctlNodeSpec): void {
    checkSpec(spec);
    if (this.nodes.has(spec.name)) {
      throw new SysctlError(SYSCTL_EEXIST, spec.name, `sysctl: ${spec.name} is already registered`);
    }
    for (const other of this.nodes.keys()) {
      if (other.startsWith(spec.name + '.') || spec.name.startsWith(other + '.')) {
        throw new SysctlError(SYSCTL_EEXIST, spec.name, `sysctl: ${spec.name} clashes with node ${other}`);
      }
    }
    this.nodes.set(spec.name, spec);
  }

  /** Remove a node registered with registerNode (a layer shutting down). ENOENT if absent. */
  unregister(name: string): void {
    if (!this.nodes.delete(name)) throw new SysctlError(SYSCTL_ENOENT, name, `sysctl: unknown oid '${name}'`);
  }

  /**
   * Add a dynamic subtree: `nodes()` is called at each lookup and returns
   * nodes whose names start with `prefix.` (e.g. one branch per UMA zone).
   */
  registerProvider(prefix: string, nodes: () => SysctlNodeSpec[]): void {
    if (!NAME_RE.test(prefix)) throw new SysctlError(SYSCTL_EINVAL, prefix, `sysctl: bad provider prefix '${prefix}'`);
    this.providers.push({ prefix, nodes });
  }

  /** Read a leaf. ENOENT for unknown names (and for interior nodes: use list()). */
  get(name: string): SysctlValue {
    return this.lookup(name).get();
  }

  /**
   * Write a leaf. `value` may be a string as typed on a command line ("4096")
   * for int nodes. EPERM for read-only nodes, EINVAL for a value of the wrong
   * type or out of range, ENOENT for unknown names.
   */
  set(name: string, value: SysctlValue): void {
    const node = this.lookup(name);
    if (node.set === undefined) throw new SysctlError(SYSCTL_EPERM, name, `sysctl: oid '${name}' is read only`);
    node.set(coerce(node, value));
  }

  /** Type, description, writability and current value of a leaf. */
  describe(name: string): SysctlEntry {
    return entry(this.lookup(name));
  }

  /**
   * Every leaf equal to `prefix` or below it (all leaves for ''), sorted by
   * name, with current values. ENOENT when a non-empty prefix matches nothing.
   */
  list(prefix = ''): SysctlEntry[] {
    const out: SysctlEntry[] = [];
    for (const node of this.allNodes(prefix)) {
      if (prefix === '' || node.name === prefix || node.name.startsWith(prefix + '.')) out.push(entry(node));
    }
    if (prefix !== '' && out.length === 0) throw new SysctlError(SYSCTL_ENOENT, prefix, `sysctl: unknown oid '${prefix}'`);
    out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return out;
  }

  /** Does a leaf of this name exist? */
  has(name: string): boolean {
    try {
      this.lookup(name);
      return true;
    } catch {
      return false;
    }
  }

  private lookup(name: string): SysctlNodeSpec {
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new SysctlError(SYSCTL_ENOENT, String(name), `sysctl: unknown oid '${String(name)}'`);
    }
    const node = this.nodes.get(name);
    if (node !== undefined) return node;
    for (const p of this.providers) {
      if (!name.startsWith(p.prefix + '.')) continue;
      for (const n of p.nodes()) if (n.name === name) return n;
    }
    throw new SysctlError(SYSCTL_ENOENT, name, `sysctl: unknown oid '${name}'`);
  }

  private allNodes(prefix: string): SysctlNodeSpec[] {
    const out = [...this.nodes.values()];
    for (const p of this.providers) {
      // Only compute a provider's subtree when the prefix could reach into it.
      if (prefix === '' || p.prefix.startsWith(prefix) || prefix.startsWith(p.prefix)) out.push(...p.nodes());
    }
    return out;
  }
}

function checkSpec(spec: SysctlNodeSpec): void {
  if (typeof spec.name !== 'string' || !NAME_RE.test(spec.name)) {
    throw new SysctlError(SYSCTL_EINVAL, String(spec.name), `sysctl: bad oid name '${String(spec.name)}'`);
  }
  if (spec.type !== 'int' && spec.type !== 'string') {
    throw new SysctlError(SYSCTL_EINVAL, spec.name, `sysctl: ${spec.name}: type must be 'int' or 'string'`);
  }
  if (typeof spec.get !== 'function' || (spec.set !== undefined && typeof spec.set !== 'function')) {
    throw new SysctlError(SYSCTL_EINVAL, spec.name, `sysctl: ${spec.name}: get (and set, if given) must be functions`);
  }
}

/** Check and convert a value for a node (EINVAL on mismatch). */
function coerce(node: SysctlNodeSpec, value: SysctlValue): SysctlValue {
  if (node.type === 'string') {
    if (typeof value !== 'string') throw new SysctlError(SYSCTL_EINVAL, node.name, `sysctl: ${node.name} takes a string`);
    return value;
  }
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) n = Number(value);
  else throw new SysctlError(SYSCTL_EINVAL, node.name, `sysctl: ${node.name} takes an integer, got ${JSON.stringify(value)}`);
  if (!Number.isSafeInteger(n)) throw new SysctlError(SYSCTL_EINVAL, node.name, `sysctl: ${node.name} takes an integer, got ${value}`);
  if ((node.min !== undefined && n < node.min) || (node.max !== undefined && n > node.max)) {
    throw new SysctlError(SYSCTL_EINVAL, node.name, `sysctl: ${node.name} must be in ${node.min ?? '-inf'}..${node.max ?? 'inf'}, got ${n}`);
  }
  return n;
}

function entry(node: SysctlNodeSpec): SysctlEntry {
  return { name: node.name, type: node.type, description: node.description, writable: node.set !== undefined, value: node.get() };
}

/** `name: value` lines as sysctl(8) prints them. */
export function formatEntries(entries: readonly SysctlEntry[]): string {
  return entries.map((e) => `${e.name}: ${e.value}`).join('\n') + (entries.length > 0 ? '\n' : '');
}
