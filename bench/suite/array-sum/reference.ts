// ServerlessBench's "Array Sum" long chain in JavaScript: one stage. Input: u32 mode, u32 stage,
// u32 stages, u32 timed (the guest's header; only `stage` matters here), then i32 values; each
// stage maps every value v at position i to v × 31 + i + stage (wrapping), and answers the values.

export const HEADER = 16;

export function stage(values: Int32Array, s: number): void {
  for (let i = 0; i < values.length; i++) values[i] = (Math.imul(values[i]!, 31) + i + s) | 0;
}

export function reference(input: Uint8Array): Uint8Array {
  const s = new DataView(input.buffer, input.byteOffset, HEADER).getUint32(4, true);
  const values = new Int32Array(input.slice(HEADER).buffer);
  stage(values, s);
  return new Uint8Array(values.buffer);
}
