/**
 * Main thread. What a caller passes as a call's input (`InvokeInput`) as the bytes that are
 * sent: used by `invoke`, `invokeGroup`, `invokeChain` and host handlers, and by skeleton runs
 * and their calibration, so that every entry point takes and refuses the same inputs.
 */
import { ErrorCode, InvalidOptionError } from './errors.js';

/** A call's input: bytes, an ArrayBuffer, a string (sent as UTF-8) or nothing (no bytes). */
export type InvokeInput = Uint8Array | ArrayBuffer | string | undefined;

const encoder = new TextEncoder();

/**
 * The bytes of `input`, exactly and privately: postMessage clones a view's whole backing
 * buffer (a pooled Buffer, a slice of a large ArrayBuffer) and shares a SharedArrayBuffer, so
 * such a view is copied; a view of a whole ArrayBuffer is used as it is. Anything else is
 * `E_INVALID_OPTION`.
 */
export function toBytes(input: InvokeInput): Uint8Array {
  if (input === undefined) return new Uint8Array(0);
  if (typeof input === 'string') return encoder.encode(input);
  if (input instanceof Uint8Array) {
    const whole = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength;
    return whole && input.buffer instanceof ArrayBuffer ? input : new Uint8Array(input);
  }
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  throw new InvalidOptionError(ErrorCode.INVALID_OPTION, 'input must be a Uint8Array, an ArrayBuffer, a string or undefined', {
    path: 'input',
  });
}
