// The CSR input of the graph workloads (bench/suite/graph.ts): u32 n, u32 offsets[n + 1], u32 neighbours[…].

export class Csr {
  n: i32;
  /** Address of offsets[0]. */
  offsets: usize;
  /** Address of neighbours[0]. */
  adjacency: usize;

  constructor(input: Uint8Array) {
    const base = input.dataStart;
    this.n = load<i32>(base);
    this.offsets = base + 4;
    this.adjacency = base + 4 + ((<usize>this.n + 1) << 2);
  }

  @inline first(v: i32): i32 {
    return load<i32>(this.offsets + (<usize>v << 2));
  }

  @inline end(v: i32): i32 {
    return load<i32>(this.offsets + (<usize>(v + 1) << 2));
  }

  @inline neighbour(i: i32): i32 {
    return load<i32>(this.adjacency + (<usize>i << 2));
  }
}
