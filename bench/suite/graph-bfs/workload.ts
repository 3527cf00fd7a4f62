import { sameBytes, type Workload } from '../types.js';
import { barabasi, csr, VERTICES } from '../graph.js';

export const workload: Workload = {
  name: 'graph-bfs',
  origin: 'SeBS 503.graph-bfs',
  summary: "breadth-first search from vertex 0 of a Barabási–Albert graph (SeBS's sizes); distances and parents",
  guests: ['graph_bfs'],
  input: (size) => csr(VERTICES[size], barabasi(VERTICES[size], 503)),
  check: sameBytes('graph-bfs'),
};
