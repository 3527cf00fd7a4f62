// ServerlessBench's data transfer in JavaScript. Input: u32 role, then the payload. Role 0 (the
// producer) answers role 1 and the payload, the consumer's input; role 1 (the consumer) answers
// the payload's FNV-1a hash and length (two u32).

export function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

export function reference(input: Uint8Array): Uint8Array {
  const role = new DataView(input.buffer, input.byteOffset, 4).getUint32(0, true);
  if (role === 0) {
    const out = input.slice();
    new DataView(out.buffer).setUint32(0, 1, true);
    return out;
  }
  const payload = input.subarray(4);
  const out = new Uint32Array([fnv1a(payload), payload.length]);
  return new Uint8Array(out.buffer);
}
