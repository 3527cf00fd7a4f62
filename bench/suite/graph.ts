/**
 * The graphs of the graph workloads (SeBS 501–503): Barabási–Albert graphs with 10 edges per
 * new vertex, as SeBS generates them (`igraph.Graph.Barabasi(size, 10)`), from a fixed seed;
 * and their encodings as inputs.
 */
import type { Size } from './types.js';
import { Xorshift32 } from './random.js';

/** SeBS's graph sizes (vertices). */
export const VERTICES: Record<Size, number> = { test: 10, small: 10_000, large: 100_000 };
const EDGES_PER_VERTEX = 10;

/** Undirected edges: each new vertex to `m` distinct earlier ones, chosen in proportion to their degree. */
export function barabasi(n: number, seed: number, m = EDGES_PER_VERTEX): [number, number][] {
  const r = new Xorshift32(seed);
  const edges: [number, number][] = [];
  const ends: number[] = [];
  for (let v = 1; v < n; v++) {
    const chosen = new Set<number>();
    if (v <= m) for (let u = 0; u < v; u++) chosen.add(u);
    else while (chosen.size < m) chosen.add(ends[r.below(ends.length)]!);
    for (const u of chosen) {
      edges.push([v, u]);
      ends.push(v, u);
    }
  }
  return edges;
}

/** `u32 n, u32 offsets[n + 1], u32 neighbours[…]` (each edge both ways, in edge order). */
export function csr(n: number, edges: readonly [number, number][]): Uint8Array {
  const degree = new Uint32Array(n);
  for (const [a, b] of edges) {
    degree[a]!++;
    degree[b]!++;
  }
  const words = new Uint32Array(1 + n + 1 + edges.length * 2);
  words[0] = n;
  const offsets = words.subarray(1, n + 2);
  for (let v = 0; v < n; v++) offsets[v + 1] = offsets[v]! + degree[v]!;
  const adjacency = words.subarray(n + 2);
  const fill = offsets.slice(0, n);
  for (const [a, b] of edges) {
    adjacency[fill[a]!++] = b;
    adjacency[fill[b]!++] = a;
  }
  return new Uint8Array(words.buffer);
}

/** The input's 32-bit words (copied when the bytes do not start on a 4-byte boundary). */
export function words(input: Uint8Array): Uint32Array {
  if (input.byteOffset % 4 === 0) return new Uint32Array(input.buffer, input.byteOffset, input.byteLength >>> 2);
  return new Uint32Array(input.slice().buffer, 0, input.byteLength >>> 2);
}

/** A decoded CSR input. */
export function decodeCsr(input: Uint8Array): { n: number; offsets: Uint32Array; adjacency: Uint32Array } {
  const w = words(input);
  const n = w[0]!;
  return { n, offsets: w.subarray(1, n + 2), adjacency: w.subarray(n + 2) };
}
