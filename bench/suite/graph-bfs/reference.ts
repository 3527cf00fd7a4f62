// SeBS 503.graph-bfs in JavaScript: breadth-first search from vertex 0; every vertex's distance
// and parent (−1: unreached; the root is its own parent), as two i32 arrays.
import { decodeCsr } from '../graph.js';

export function reference(input: Uint8Array): Uint8Array {
  const { n, offsets, adjacency } = decodeCsr(input);
  const out = new Int32Array(2 * n).fill(-1);
  const dist = out.subarray(0, n);
  const parent = out.subarray(n);
  const queue = new Int32Array(n);
  let head = 0;
  let tail = 0;
  if (n > 0) {
    dist[0] = 0;
    parent[0] = 0;
    queue[tail++] = 0;
  }
  while (head < tail) {
    const v = queue[head++]!;
    for (let i = offsets[v]!; i < offsets[v + 1]!; i++) {
      const u = adjacency[i]!;
      if (dist[u] !== -1) continue;
      dist[u] = dist[v]! + 1;
      parent[u] = v;
      queue[tail++] = u;
    }
  }
  return new Uint8Array(out.buffer);
}
