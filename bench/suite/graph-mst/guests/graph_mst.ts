import { read, respond, start } from "../../guests/timed";

// Kruskal, the algorithm of bench/suite/graph-mst/reference.ts.
let edges: usize = 0;

@inline function weight(e: u32): u32 {
  return load<u32>(edges + ((<usize>e * 3 + 2) << 2));
}

let parent: usize = 0;

@inline function up(v: i32): i32 {
  return load<i32>(parent + (<usize>v << 2));
}

function find(v: i32): i32 {
  while (up(v) != v) {
    store<i32>(parent + (<usize>v << 2), up(up(v)));
    v = up(v);
  }
  return v;
}

export function main(): i32 {
  const t = start();
  const input = read();
  const n = load<i32>(input.dataStart);
  const m = load<i32>(input.dataStart + 4);
  edges = input.dataStart + 8;
  const order = new Uint32Array(m);
  for (let i = 0; i < m; i++) unchecked((order[i] = i));
  order.sort((a: u32, b: u32): i32 => {
    const d = <i32>weight(a) - <i32>weight(b);
    return d != 0 ? d : <i32>a - <i32>b;
  });
  const parents = new Int32Array(n);
  parent = parents.dataStart;
  const size = new Int32Array(n).fill(1);
  for (let v = 0; v < n; v++) unchecked((parents[v] = v));
  const out = new Uint32Array(3 + max(0, n - 1));
  let total: u64 = 0;
  let count = 0;
  for (let k = 0; k < m; k++) {
    const e = unchecked(order[k]);
    let a = find(load<i32>(edges + ((<usize>e * 3) << 2)));
    let b = find(load<i32>(edges + ((<usize>e * 3 + 1) << 2)));
    if (a == b) continue;
    if (unchecked(size[a]) < unchecked(size[b])) {
      const s = a;
      a = b;
      b = s;
    }
    unchecked((parents[b] = a));
    unchecked((size[a] += size[b]));
    total += weight(e);
    unchecked((out[3 + count++] = e));
  }
  out[0] = <u32>total;
  out[1] = <u32>(total >> 32);
  out[2] = count;
  respond(t, Uint8Array.wrap(out.buffer, 0, (3 + count) * 4));
  return 0;
}
