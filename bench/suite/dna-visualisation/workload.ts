import { sameBytes, type Size, type Workload } from '../types.js';
import { Xorshift32 } from '../random.js';

// SeBS draws a bacterial genome of a few MB; the sequences here are generated, with some GC-rich stretches.
const BASES: Record<Size, number> = { test: 1000, small: 100_000, large: 2_000_000 };

function sequence(n: number): Uint8Array {
  const r = new Xorshift32(504);
  const out = new Uint8Array(n);
  let rich = false;
  for (let i = 0; i < n; i++) {
    if (r.below(500) === 0) rich = !rich;
    const v = r.below(100);
    out[i] = rich ? 'GCGCAT'.charCodeAt(v % 6) : v === 0 ? 78 : 'ACGT'.charCodeAt(v & 3);
  }
  return out;
}

export const workload: Workload = {
  name: 'dna-visualisation',
  origin: 'SeBS 504.dna-visualisation',
  summary: 'a generated DNA sequence turned into squiggle coordinates (two f64 points per base)',
  guests: ['dna_visualisation'],
  input: (size) => sequence(BASES[size]),
  check: sameBytes('dna-visualisation'),
};
