// Allocates 1 MiB blocks and keeps them until memory runs out.
const kept = new Array<Uint8Array>();
export function main(): i32 {
  for (let i = 0; i < 100000; i++) {
    const block = new Uint8Array(1 << 20);
    block[0] = <u8>i;
    kept.push(block);
  }
  return kept.length;
}
