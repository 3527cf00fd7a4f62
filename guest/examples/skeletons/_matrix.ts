// Shared by the matrix functions. A problem is u32 n, then A and B (n×n i32, row-major);
// a result is u32 n, then C (n×n i32). Arithmetic wraps (i32), so results are exact.
export function header(data: Uint8Array): i32 {
  return <i32>load<u32>(data.dataStart);
}

/** The n/2 × n/2 block (bi, bj) of the n × n matrix at `src`, into `dst`. */
export function copyBlock(src: usize, n: i32, bi: i32, bj: i32, dst: usize): void {
  const h = n / 2;
  for (let r = 0; r < h; r++) {
    memory.copy(dst + <usize>(r * h * 4), src + <usize>(((bi * h + r) * n + bj * h) * 4), <usize>(h * 4));
  }
}

/** Called from init(): reserves heap so calls do not grow memory. */
export function reserve(): void {
  heap.free(heap.alloc(8 << 20));
}
