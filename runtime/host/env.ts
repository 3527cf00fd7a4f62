/**
 * Worker thread. AssemblyScript's own runtime imports (module `env`): `abort` (a failed
 * assertion or an uncaught `throw`), `trace` and `seed`. nuvola's capabilities never use `env`.
 */
import * as abi from '../../guest/sdk/nuvola/abi.js';
import { ErrorCode, GuestError } from '../errors.js';
import { guestBytes, logLine, type ContextRef, type GuestContext } from './context.js';
import { mapFrames, ownFrame } from '../source-map.js';
import type { Capability } from './imports.js';

/** Reads an AssemblyScript string: UTF-16LE, its byte length stored in the 4 bytes before it. */
function readString(ctx: GuestContext, ptr: number): string {
  if (ptr === 0) return '';
  const header = guestBytes(ctx, (ptr >>> 0) - 4, 4, abi.ENV_ABORT);
  const byteLength = new DataView(header.buffer, header.byteOffset, 4).getUint32(0, true);
  const body = guestBytes(ctx, ptr, byteLength & ~1, abi.ENV_ABORT);
  return new TextDecoder('utf-16le').decode(body);
}

export const env: Capability = {
  module: abi.MODULE_ENV,
  functions: { [abi.ENV_ABORT]: false, [abi.ENV_TRACE]: false, [abi.ENV_SEED]: false },
  bind(ref: ContextRef) {
    return {
      [abi.ENV_ABORT]: (msgPtr: number, filePtr: number, line: number, column: number): never => {
        const ctx = ref.ctx;
        const message = readString(ctx, msgPtr);
        const file = readString(ctx, filePtr);
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
        // Within maxLogBytes like any other log line: the string's length is the guest's to write.
        logLine(ctx, `trace: ${readString(ctx, msgPtr)} ${args.slice(0, Math.max(0, n)).join(', ')}`.trimEnd());
      },
      [abi.ENV_SEED]: (): number => Date.now() * Math.random(),
    };
  },
};
