/**
 * Worker thread. Host imports of module `nuvola:sys`. The clock is `process.hrtime`, one clock
 * for every thread of the process, so a later call reads a later time whichever worker runs
 * it. Random bytes come from the operating system's cryptographic source, written straight
 * into the guest's memory through the bounds-checked view (E_GUEST_POINTER outside it).
 */
import { randomFillSync } from 'node:crypto';
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { guestCapability } from '../capability.js';
import { guestWritable, type ContextRef } from '../context.js';

const word = new BigUint64Array(1);

export default guestCapability({
  bind(ref: ContextRef) {
    return {
      [abi.SYS_MONOTONIC_NS]: (): bigint => BigInt.asIntN(64, process.hrtime.bigint()),
      [abi.SYS_RANDOM_BYTES]: (ptr: number, len: number): void => {
        randomFillSync(guestWritable(ref.ctx, ptr, len, abi.SYS_RANDOM_BYTES));
      },
      [abi.SYS_RANDOM_U64]: (): bigint => BigInt.asIntN(64, randomFillSync(word)[0]!),
    };
  },
});
