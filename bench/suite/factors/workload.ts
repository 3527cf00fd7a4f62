import { sameBytes, type Size, type Workload } from '../types.js';
import { utf8 } from '../random.js';

// The large one is FaaSdom's number.
const N: Record<Size, string> = { test: '720720', small: '963761198400', large: '2688834647444046' };

export const workload: Workload = {
  name: 'factors',
  origin: 'FaaSdom factors',
  summary: 'every divisor of an integer by trial division (u64 in the guest, doubles in JavaScript)',
  guests: ['factors'],
  input: (size) => utf8(N[size]),
  check: sameBytes('factors'),
};
