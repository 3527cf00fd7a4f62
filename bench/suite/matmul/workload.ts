import { sameBytes, type Size, type Workload } from '../types.js';
import { Xorshift32 } from '../random.js';

const N: Record<Size, number> = { test: 16, small: 128, large: 512 };

function matrices(n: number): Uint8Array {
  const r = new Xorshift32(1000 + n);
  const bytes = new Uint8Array(8 + 16 * n * n);
  new DataView(bytes.buffer).setUint32(0, n, true);
  const values = new Float64Array(bytes.buffer, 8, 2 * n * n);
  for (let i = 0; i < values.length; i++) values[i] = r.float() * 2 - 1;
  return bytes;
}

export const workload: Workload = {
  name: 'matmul',
  origin: 'FaaSdom matrix multiplication',
  summary: 'C = A × B for two generated n × n f64 matrices (i-k-j loops); C bit for bit',
  guests: ['matmul'],
  input: (size) => matrices(N[size]),
  check: sameBytes('matmul'),
};
