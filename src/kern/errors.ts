/**
 * Error classes with stable `code` strings, in the manner of Node.js core:
 * callers branch on `err.code`, never on message text.
 */

export class SlabnetError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A wrong argument: bad flags, sizes, names, handles. */
export class ArgumentError extends SlabnetError {
  constructor(message: string) {
    super('ERR_SLABNET_INVALID_ARG', message);
  }
}

/** The arena has no room left for what was asked (reported only where no NOWAIT null is possible). */
export class OutOfMemoryError extends SlabnetError {
  constructor(message: string) {
    super('ERR_SLABNET_NOMEM', message);
  }
}

/** A zone was destroyed with items still in use. */
export class ZoneBusyError extends SlabnetError {
  readonly zone: string;
  readonly inUse: number;
  constructor(zone: string, inUse: number) {
    super('ERR_SLABNET_ZONE_BUSY', `zone "${zone}" destroyed with ${inUse} item(s) in use`);
    this.zone = zone;
    this.inUse = inUse;
  }
}

/** Lock-order reversal, lock held across a sleep, recursion on a non-recursive lock. */
export class WitnessError extends SlabnetError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}

/** Use after free, double free, freeing a foreign address (debug checks of UMA). */
export class MemoryCorruptionError extends SlabnetError {
  constructor(code: string, message: string) {
    super(code, message);
  }
}
