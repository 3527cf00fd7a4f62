// SeBS 502.graph-mst in JavaScript: Kruskal's minimum spanning forest (edges sorted by weight,
// ties by index; union–find with path halving and union by size). Input: u32 n, u32 m, then m
// edges (u32 u, v, weight). Output: u32 total weight (low, high), u32 count, the chosen edges' indices in order.
import { words } from '../graph.js';

export function reference(input: Uint8Array): Uint8Array {
  const w = words(input);
  const n = w[0]!;
  const m = w[1]!;
  const edges = w.subarray(2);
  const order = new Uint32Array(m);
  for (let i = 0; i < m; i++) order[i] = i;
  order.sort((a, b) => edges[a * 3 + 2]! - edges[b * 3 + 2]! || a - b);
  const parent = new Int32Array(n);
  const size = new Int32Array(n).fill(1);
  for (let v = 0; v < n; v++) parent[v] = v;
  const find = (v: number): number => {
    while (parent[v] !== v) {
      parent[v] = parent[parent[v]!]!;
      v = parent[v]!;
    }
    return v;
  };
  const out = new Uint32Array(3 + Math.max(0, n - 1));
  let total = 0;
  let count = 0;
  for (let k = 0; k < m; k++) {
    const e = order[k]!;
    let a = find(edges[e * 3]!);
    let b = find(edges[e * 3 + 1]!);
    if (a === b) continue;
    if (size[a]! < size[b]!) [a, b] = [b, a];
    parent[b] = a;
    size[a]! += size[b]!;
    total += edges[e * 3 + 2]!;
    out[3 + count++] = e;
  }
  out[0] = total % 2 ** 32;
  out[1] = Math.floor(total / 2 ** 32);
  out[2] = count;
  return new Uint8Array(out.buffer, 0, (3 + count) * 4);
}
