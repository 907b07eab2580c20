/** A handler module whose register() throws on CPU 2 (start failure tests). */
import type { ProtocolThread } from '../../kern/lwkt/protothread.js';

export function register(td: ProtocolThread): void {
  if (td.cpu === 2) throw new Error('register refused on cpu2');
}
