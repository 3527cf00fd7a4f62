// FaaSdom's matrix multiplication in JavaScript: C = A × B for n × n f64 matrices, i-k-j loop
// order. Input: u32 n, u32 padding, then A and B row by row; output: C.

export function reference(input: Uint8Array): Uint8Array {
  const aligned = input.byteOffset % 8 === 0 ? input : input.slice();
  const n = new DataView(aligned.buffer, aligned.byteOffset).getUint32(0, true);
  const a = new Float64Array(aligned.buffer, aligned.byteOffset + 8, n * n);
  const b = new Float64Array(aligned.buffer, aligned.byteOffset + 8 + n * n * 8, n * n);
  const c = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      const row = k * n;
      const out = i * n;
      for (let j = 0; j < n; j++) c[out + j]! += aik * b[row + j]!;
    }
  }
  return new Uint8Array(c.buffer);
}
