/** Worker thread. Host imports of module `nuvola:io`: input, output, log, sleep. */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { ErrorCode, LimitError } from '../../errors.js';
import { guestBytes, guestWritable, logLine, type ContextRef } from '../context.js';
import { wallClock } from '../../protocol.js';
import { guestCapability } from '../capability.js';

const decoder = new TextDecoder();

export default guestCapability({
  bind(ref: ContextRef) {
    return {
      [abi.IO_INPUT_SIZE]: (): number => ref.ctx.input.length,
      [abi.IO_INPUT_READ]: (ptr: number, len: number): number => {
        const ctx = ref.ctx;
        const n = Math.min(len >>> 0, ctx.input.length);
        guestWritable(ctx, ptr, n, abi.IO_INPUT_READ).set(ctx.input.subarray(0, n));
        return n;
      },
      [abi.IO_OUTPUT_WRITE]: (ptr: number, len: number): void => {
        const ctx = ref.ctx;
        const bytes = guestBytes(ctx, ptr, len, abi.IO_OUTPUT_WRITE);
        if (bytes.byteLength > ctx.maxOutputBytes) {
          throw new LimitError(
            ErrorCode.OUTPUT_TOO_LARGE,
            `function '${ctx.fn}' wrote ${bytes.byteLength} bytes of output, above maxOutputBytes=${ctx.maxOutputBytes}; raise it in createRuntime()`,
            { function: ctx.fn, bytes: bytes.byteLength, maxOutputBytes: ctx.maxOutputBytes },
          );
        }
        ctx.output = bytes.slice();
      },
      [abi.IO_LOG]: (ptr: number, len: number): void => {
        const ctx = ref.ctx;
        const bytes = guestBytes(ctx, ptr, len, abi.IO_LOG);
        if (ctx.logBudget <= 0) return;
        // Decode no more than could fit: logLine cuts to the budget and marks the cut.
        logLine(ctx, decoder.decode(bytes.subarray(0, ctx.logBudget + 4)));
      },
      [abi.IO_REMAINING_MS]: (): number => {
        // Deadlines are wall-clock times; clamp to an i32 (an unbounded deadline is Infinity).
        const left = Math.floor(ref.ctx.deadline - wallClock());
        return Number.isFinite(left) ? Math.max(0, Math.min(0x7fffffff, left)) : 0x7fffffff;
      },
      [abi.IO_SLEEP]: (ms: number): Promise<void> => {
        const ctx = ref.ctx;
        return new Promise((resolve) => {
          const wake = (): void => {
            clearTimeout(timer);
            ctx.cancelWaiters.delete(wake);
            resolve();
          };
          const timer = setTimeout(wake, Math.max(0, ms));
          ctx.cancelWaiters.add(wake);
        });
      },
    };
  },
});
