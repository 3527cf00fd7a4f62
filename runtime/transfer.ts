/**
 * Any thread. Which buffers a message may move instead of copy.
 */

/**
 * The buffers of the typed arrays in `value` (searched through arrays and plain objects), to
 * move rather than copy across threads — only for arrays nobody else holds.
 */
export function ownedBuffers(value: unknown, into: ArrayBuffer[] = []): ArrayBuffer[] {
  if (ArrayBuffer.isView(value)) {
    if (value.buffer instanceof ArrayBuffer && !into.includes(value.buffer)) into.push(value.buffer);
  } else if (Array.isArray(value)) {
    for (const v of value) ownedBuffers(v, into);
  } else if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) ownedBuffers(v, into);
  }
  return into;
}
