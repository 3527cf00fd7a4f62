// SeBS 501.graph-pagerank in JavaScript: PageRank (damping 0.85) by power iteration until the
// ranks move less than 1e-10 in total (at most 100 iterations); u32 iterations, then f64 ranks.
import { decodeCsr } from '../graph.js';

export const DAMPING = 0.85;
export const TOLERANCE = 1e-10;
export const MAX_ITERATIONS = 100;

export function reference(input: Uint8Array): Uint8Array {
  const { n, offsets, adjacency } = decodeCsr(input);
  const out = new ArrayBuffer(8 + 8 * n);
  let rank = new Float64Array(out, 8, n).fill(1 / n);
  let next = new Float64Array(n);
  const contribution = new Float64Array(n);
  let iterations = 0;
  while (iterations < MAX_ITERATIONS) {
    iterations++;
    let dangling = 0;
    for (let v = 0; v < n; v++) {
      const degree = offsets[v + 1]! - offsets[v]!;
      if (degree === 0) dangling += rank[v]!;
      else contribution[v] = rank[v]! / degree;
    }
    const base = (1 - DAMPING) / n + (DAMPING * dangling) / n;
    let change = 0;
    for (let v = 0; v < n; v++) {
      let sum = 0;
      for (let i = offsets[v]!; i < offsets[v + 1]!; i++) sum += contribution[adjacency[i]!]!;
      const r = base + DAMPING * sum;
      change += Math.abs(r - rank[v]!);
      next[v] = r;
    }
    [rank, next] = [next, rank];
    if (change < TOLERANCE) break;
  }
  new Float64Array(out, 8, n).set(rank);
  new DataView(out).setUint32(0, iterations, true);
  return new Uint8Array(out);
}
