import { sameBytes, type Size, type Workload } from '../types.js';
import { utf8 } from '../random.js';

export const OPERATIONS: Record<Size, number> = { test: 10_000, small: 10_000_000, large: 100_000_000 };

export const workload: Workload = {
  name: 'alu',
  origin: 'ServerlessBench ALU',
  summary: 'a loop of 32-bit add, subtract, multiply and divide on generated numbers, folded into a checksum',
  guests: ['alu'],
  input: (size) => utf8(`${OPERATIONS[size]} 7`),
  check: sameBytes('alu'),
};
