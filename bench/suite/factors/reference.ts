// FaaSdom's factors in JavaScript: every divisor of n by trial division up to √n, ascending,
// comma-separated. Input: n in decimal (below 2^53, so doubles are exact).
import { text, utf8 } from '../random.js';

export function reference(input: Uint8Array): Uint8Array {
  const n = Number(text(input));
  const small: number[] = [];
  const large: number[] = [];
  for (let i = 1; i * i <= n; i++) {
    if (n % i !== 0) continue;
    small.push(i);
    if (i !== n / i) large.push(n / i);
  }
  return utf8([...small, ...large.reverse()].join(','));
}
