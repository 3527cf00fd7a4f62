/**
 * Worker thread. AssemblyScript's own runtime imports (module `env`): `abort` (a failed
 * assertion or an uncaught `throw`), `trace` and `seed`. nuvola's capabilities never use `env`.
 */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { ErrorCode, GuestError } from '../../errors.js';
import { guestBytes, logLine, type ContextRef, type GuestContext } from '../context.js';
import { mapFrames, ownFrame } from '../../source-map.js';
import { guestCapability } from '../capability.js';

const utf16 = new TextDecoder('utf-16le');

/**
 * Reads an AssemblyScript string: UTF-16LE, its byte length stored in the 4 bytes before it.
 * The whole string must be inside the guest's memory; at most `maxUnits` of it are decoded (then `…`).
 */
function readString(ctx: GuestContext, ptr: number, what: string, maxUnits = Infinity): string {
  if (ptr === 0) return '';
  const header = guestBytes(ctx, (ptr >>> 0) - 4, 4, what);
  const byteLength = new DataView(header.buffer, header.byteOffset, 4).getUint32(0, true);
  const body = guestBytes(ctx, ptr, byteLength & ~1, what);
  if (body.byteLength <= 2 * maxUnits) return utf16.decode(body);
  return `${utf16.decode(body.subarray(0, 2 * maxUnits))}…`;
}

/** Most UTF-16 units of an abort's message or file name kept in the error. */
const MAX_ABORT_UNITS = 4096;

export default guestCapability({
  bind(ref: ContextRef) {
    return {
      [abi.ENV_ABORT]: (msgPtr: number, filePtr: number, line: number, column: number): never => {
        const ctx = ref.ctx;
        const message = readString(ctx, msgPtr, abi.ENV_ABORT, MAX_ABORT_UNITS);
        const file = readString(ctx, filePtr, abi.ENV_ABORT, MAX_ABORT_UNITS);
        // The guest's frames that led here: the abort's own position is often in the
        // standard library (an index check in ~lib/array.ts), the caller's is the useful one.
        const frames = mapFrames(new Error().stack ?? '', ctx.sources);
        const own = file.startsWith('~lib/') ? ownFrame(frames) : undefined;
        const where = own === undefined ? `${file}:${line}:${column}` : `${own} (in ${file}:${line}:${column})`;
        throw new GuestError(ErrorCode.GUEST_ABORT, `function '${ctx.fn}' aborted: ${message || '(no message)'} at ${where}`, {
          function: ctx.fn,
          message,
          file,
          line,
          column,
          frames,
        });
      },
      [abi.ENV_TRACE]: (msgPtr: number, n: number, ...args: number[]): void => {
        const ctx = ref.ctx;
        // A log line like any other, within maxLogBytes: a string longer than the budget left is cut unread.
        const message = readString(ctx, msgPtr, abi.ENV_TRACE, ctx.logBudget + 1);
        logLine(ctx, `trace: ${message} ${args.slice(0, Math.max(0, n)).join(', ')}`.trimEnd());
      },
      [abi.ENV_SEED]: (): number => Date.now() * Math.random(),
    };
  },
});
