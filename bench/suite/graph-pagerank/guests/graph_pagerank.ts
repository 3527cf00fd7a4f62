import { read, respond, start } from "../../guests/timed";
import { Csr } from "../../guests/graph";

const DAMPING: f64 = 0.85;
const TOLERANCE: f64 = 1e-10;
const MAX_ITERATIONS = 100;

export function main(): i32 {
  const t = start();
  const g = new Csr(read());
  const n = g.n;
  const out = new Uint8Array(8 + 8 * n);
  let rank = out.dataStart + 8;
  const spare = new Float64Array(n);
  let next = spare.dataStart;
  const contribution = new Float64Array(n).dataStart;
  for (let v = 0; v < n; v++) store<f64>(rank + (<usize>v << 3), 1 / <f64>n);
  let iterations = 0;
  while (iterations < MAX_ITERATIONS) {
    iterations++;
    let dangling: f64 = 0;
    for (let v = 0; v < n; v++) {
      const degree = g.end(v) - g.first(v);
      if (degree == 0) dangling += load<f64>(rank + (<usize>v << 3));
      else store<f64>(contribution + (<usize>v << 3), load<f64>(rank + (<usize>v << 3)) / <f64>degree);
    }
    const base = (1 - DAMPING) / <f64>n + (DAMPING * dangling) / <f64>n;
    let change: f64 = 0;
    for (let v = 0; v < n; v++) {
      let sum: f64 = 0;
      const end = g.end(v);
      for (let i = g.first(v); i < end; i++) sum += load<f64>(contribution + (<usize>g.neighbour(i) << 3));
      const r = base + DAMPING * sum;
      change += abs(r - load<f64>(rank + (<usize>v << 3)));
      store<f64>(next + (<usize>v << 3), r);
    }
    const swap = rank;
    rank = next;
    next = swap;
    if (change < TOLERANCE) break;
  }
  if (rank != out.dataStart + 8) memory.copy(out.dataStart + 8, rank, <usize>n << 3);
  store<u32>(out.dataStart, iterations);
  respond(t, out);
  return 0;
}
