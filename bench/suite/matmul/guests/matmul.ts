import { read, respond, start } from "../../guests/timed";

// FaaSdom's matrix multiplication, the algorithm of bench/suite/matmul/reference.ts.
export function main(): i32 {
  const t = start();
  const input = read();
  const n = <usize>load<u32>(input.dataStart);
  const a = input.dataStart + 8;
  const b = a + ((n * n) << 3);
  const c = new Uint8Array(<i32>((n * n) << 3));
  const cp = c.dataStart;
  for (let i: usize = 0; i < n; i++) {
    for (let k: usize = 0; k < n; k++) {
      const aik = load<f64>(a + ((i * n + k) << 3));
      const row = b + ((k * n) << 3);
      const out = cp + ((i * n) << 3);
      for (let j: usize = 0; j < n; j++) {
        const at = out + (j << 3);
        store<f64>(at, load<f64>(at) + aik * load<f64>(row + (j << 3)));
      }
    }
  }
  respond(t, c);
  return 0;
}
