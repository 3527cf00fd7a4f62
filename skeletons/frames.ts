/**
 * Framed lists for skeletons (`nuvola/skeletons`' `frame` and `unframe`): the layout of
 * runtime/frames.ts — u32 count, then for each part a u32 length and its bytes, little-endian —
 * as the guest SDK's `frames` class reads and writes it; a malformed list is `E_INVALID_SKELETON`.
 */
import { ErrorCode, SkeletonError } from '../runtime/index.js';
import { unframe as unframeOr } from '../runtime/frames.js';

export { frame } from '../runtime/frames.js';

/** The parts of a framed list (views into `data`); a SkeletonError when `data` is not one. */
export function unframe(data: Uint8Array, what = 'input'): Uint8Array[] {
  return unframeOr(
    data,
    (why) =>
      new SkeletonError(ErrorCode.INVALID_SKELETON, `${what} is not a framed list (${why}); produce it with frames.join / frame()`, {
        bytes: data.byteLength,
      }),
  );
}
