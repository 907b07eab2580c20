/**
 * witness: the lock-order checker, after FreeBSD's WITNESS(4).
 *
 * Every lock has a class (a name). The first time a thread acquires class B
 * while holding class A, the order A -> B is recorded in a matrix shared by all
 * workers (it lives in the arena), together with the acquisition site. Taking
 * B then A afterwards, on any thread, is a lock-order reversal and is reported
 * naming both classes and both sites. So is acquiring a second lock of a class
 * already held, and sleeping (an M_WAITOK allocation) while holding any lock.
 *
 * Off unless the arena is in debug mode; then each lock/unlock pays for a stack
 * capture, which is why the hot paths of UMA take no locks at all.
 */
import { WitnessError } from '../errors.js';
import {
  H_WITNESS_CLASS_LOCK,
  H_WITNESS_NCLASSES,
  WITNESS_MAX_CLASSES,
  WITNESS_NAME_BYTES,
  WITNESS_SITE_BYTES,
} from '../../vm/layout.js';

export interface LockLike {
  readonly className: string;
}

interface Held {
  lock: LockLike;
  cls: number;
  site: string;
}

export interface WitnessReport {
  code: string;
  message: string;
}

export type WitnessMode = 'panic' | 'warn';

const N = WITNESS_MAX_CLASSES;

export class Witness {
  enabled = false;
  /** 'panic' throws a WitnessError at the offending call; 'warn' records and logs. */
  mode: WitnessMode = 'panic';
  readonly reports: WitnessReport[] = [];
  private i32: Int32Array | null = null;
  private u8: Uint8Array | null = null;
  private base = 0;
  private readonly held: Held[] = [];
  private readonly classIds = new Map<string, number>();

  /** Bind to an arena's witness region (called by the UMA attach of each thread). */
  attach(i32: Int32Array, regionOffset: number, enabled: boolean): void {
    this.i32 = i32;
    this.u8 = new Uint8Array(i32.buffer);
    this.base = regionOffset;
    this.enabled = enabled;
    this.classIds.clear();
    this.held.length = 0;
  }

  private namesOff(): number {
    return this.base;
  }
  private orderOff(): number {
    return this.base + N * WITNESS_NAME_BYTES;
  }
  private siteOff(a: number, b: number): number {
    return this.orderOff() + N * N + (a * N + b) * WITNESS_SITE_BYTES;
  }

  /** The shared id of a lock class, registering the name on first use. */
  classId(name: string): number {
    const cached = this.classIds.get(name);
    if (cached !== undefined) return cached;
    const i32 = this.i32!;
    while (Atomics.compareExchange(i32, H_WITNESS_CLASS_LOCK, 0, 1) !== 0) {
      /* spin: registration is rare and short */
    }
    try {
      const n = i32[H_WITNESS_NCLASSES];
      for (let id = 0; id < n; id++) {
        if (this.readStr(this.namesOff() + id * WITNESS_NAME_BYTES, WITNESS_NAME_BYTES) === name) {
          this.classIds.set(name, id);
          return id;
        }
      }
      if (n >= N) throw new WitnessError('ERR_SLABNET_WITNESS_CLASSES', `witness: more than ${N} lock classes`);
      this.writeStr(this.namesOff() + n * WITNESS_NAME_BYTES, WITNESS_NAME_BYTES, name);
      Atomics.store(i32, H_WITNESS_NCLASSES, n + 1);
      this.classIds.set(name, n);
      return n;
    } finally {
      Atomics.store(i32, H_WITNESS_CLASS_LOCK, 0);
    }
  }

  /** Check ordering before a lock is acquired (it may sleep there). */
  beforeLock(lock: LockLike, isTry = false): void {
    const cls = this.classId(lock.className);
    const site = callSite();
    for (const h of this.held) {
      if (h.lock === lock) {
        this.report('ERR_SLABNET_LOCK_RECURSION', `witness: recursing on non-recursive lock "${lock.className}" @ ${site}; first acquired @ ${h.site}`);
        return;
      }
      if (h.cls === cls) {
        this.report('ERR_SLABNET_LOCK_DUP', `witness: acquiring duplicate lock of class "${lock.className}" @ ${site}; 1st held @ ${h.site}`);
        return;
      }
    }
    if (isTry) return; // a try-lock cannot deadlock, so it establishes no order
    const order = this.orderOff();
    const u8 = this.u8!;
    for (const h of this.held) {
      if (u8[order + h.cls * N + cls] !== 0) continue;
      if (this.reaches(cls, h.cls)) {
        const known = this.readStr(this.siteOff(cls, this.firstStep(cls, h.cls)), WITNESS_SITE_BYTES);
        this.report(
          'ERR_SLABNET_LOR',
          `lock order reversal:\n 1st "${h.lock.className}" @ ${h.site}\n 2nd "${lock.className}" @ ${site}\n` +
            ` established order: "${lock.className}" before "${h.lock.className}" (first seen @ ${known})`,
        );
        return;
      }
      u8[order + h.cls * N + cls] = 1;
      this.writeStr(this.siteOff(h.cls, cls), WITNESS_SITE_BYTES, site);
    }
  }

  afterLock(lock: LockLike): void {
    this.held.push({ lock, cls: this.classId(lock.className), site: callSite() });
  }

  unlocked(lock: LockLike): void {
    for (let i = this.held.length - 1; i >= 0; i--) {
      if (this.held[i].lock === lock) {
        this.held.splice(i, 1);
        return;
      }
    }
    this.report('ERR_SLABNET_LOCK_NOT_HELD', `witness: unlocking "${lock.className}" which this thread does not hold @ ${callSite()}`);
  }

  /**
   * WITNESS_WARN(WARN_SLEEPOK): called before anything that may sleep, such as
   * an M_WAITOK allocation. Holding any lock there is reported.
   */
  checkSleepable(what: string): void {
    if (this.held.length === 0) return;
    const h = this.held[this.held.length - 1];
    this.report(
      'ERR_SLABNET_SLEEP_WITH_LOCK',
      `witness: ${what} may sleep with "${h.lock.className}" held (acquired @ ${h.site}) @ ${callSite()}`,
    );
  }

  /** Names of the classes this thread holds, innermost last. */
  heldClasses(): string[] {
    return this.held.map((h) => h.lock.className);
  }

  /** Forget the recorded order (tests that build deliberate reversals start clean). */
  resetOrder(): void {
    const start = this.orderOff();
    this.u8!.fill(0, start, start + N * N);
  }

  private reaches(from: number, to: number): boolean {
    const u8 = this.u8!;
    const order = this.orderOff();
    const seen = new Uint8Array(N);
    const stack = [from];
    while (stack.length > 0) {
      const a = stack.pop()!;
      if (a === to) return true;
      if (seen[a]) continue;
      seen[a] = 1;
      for (let b = 0; b < N; b++) if (u8[order + a * N + b] !== 0) stack.push(b);
    }
    return false;
  }

  /** First class on a recorded path from -> to, for naming the site of the established order. */
  private firstStep(from: number, to: number): number {
    const u8 = this.u8!;
    const order = this.orderOff();
    if (u8[order + from * N + to] !== 0) return to;
    for (let b = 0; b < N; b++) if (u8[order + from * N + b] !== 0 && this.reaches(b, to)) return b;
    return to;
  }

  private report(code: string, message: string): void {
    const r = { code, message };
    this.reports.push(r);
    if (this.mode === 'panic') throw new WitnessError(code, message);
    process.emitWarning(message, { code });
  }

  private readStr(off: number, max: number): string {
    const u8 = this.u8!;
    let s = '';
    for (let i = 0; i < max && u8[off + i] !== 0; i++) s += String.fromCharCode(u8[off + i]);
    return s;
  }
  private writeStr(off: number, max: number, s: string): void {
    const u8 = this.u8!;
    const n = Math.min(s.length, max - 1);
    for (let i = 0; i < n; i++) u8[off + i] = s.charCodeAt(i) & 0x7f;
    u8[off + n] = 0;
  }
}

/** This module's directory: frames from the lock code itself (mutex, witness) are skipped. */
const SYNC_DIR = new URL('.', import.meta.url).href;

/** file:line of the first caller outside the lock code (sync/ of this package, not any "sync" folder). */
function callSite(): string {
  const stack = new Error().stack ?? '';
  const lines = stack.split('\n').slice(1);
  for (const l of lines) {
    if (l.includes(SYNC_DIR)) continue;
    return l.trim().replace(/^at /, '').replace(/^.*\((.*)\)$/, '$1').replace(/^file:\/\/.*[\\/](dist|src)[\\/]/, '$1/');
  }
  const l = lines[lines.length - 1] ?? '?';
  return l.trim().replace(/^at /, '');
}

/** One witness per thread: lock stacks are thread-local, the order matrix is shared. */
export const witness = new Witness();
