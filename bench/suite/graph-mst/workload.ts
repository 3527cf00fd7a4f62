import { sameBytes, type Workload } from '../types.js';
import { barabasi, VERTICES } from '../graph.js';
import { Xorshift32 } from '../random.js';

function weighted(n: number): Uint8Array {
  const edges = barabasi(n, 502);
  const r = new Xorshift32(5020);
  const w = new Uint32Array(2 + edges.length * 3);
  w[0] = n;
  w[1] = edges.length;
  edges.forEach(([a, b], i) => w.set([a, b, 1 + r.below(1000)], 2 + i * 3));
  return new Uint8Array(w.buffer);
}

export const workload: Workload = {
  name: 'graph-mst',
  origin: 'SeBS 502.graph-mst',
  summary: "Kruskal's minimum spanning tree of a weighted Barabási–Albert graph (SeBS's sizes)",
  guests: ['graph_mst'],
  input: (size) => weighted(VERTICES[size]),
  check: sameBytes('graph-mst'),
};
