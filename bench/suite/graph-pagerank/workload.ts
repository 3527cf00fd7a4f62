import { sameBytes, type Workload } from '../types.js';
import { barabasi, csr, VERTICES } from '../graph.js';

export const workload: Workload = {
  name: 'graph-pagerank',
  origin: 'SeBS 501.graph-pagerank',
  summary: "PageRank by power iteration on a Barabási–Albert graph (SeBS's sizes); f64 ranks, bit for bit",
  guests: ['graph_pagerank'],
  input: (size) => csr(VERTICES[size], barabasi(VERTICES[size], 501)),
  check: sameBytes('graph-pagerank'),
};
