import { clock, kernels, output } from "nuvola";
// Sums two floats on the device again and again for about 1.5 s, and outputs the monotonic
// time (u64 ns) at which each call returned.
export function main(): i32 {
  const x = new Float32Array(2);
  x[0] = 2;
  x[1] = 3;
  const times = new Array<u64>();
  const end = clock.monotonicNs() + 1_500_000_000;
  while (clock.monotonicNs() < end) {
    if (kernels.sumF32(x) != 5) return 1;
    times.push(<u64>clock.monotonicNs());
  }
  const out = new Uint8Array(times.length * 8);
  for (let i = 0; i < times.length; i++) store<u64>(out.dataStart + <usize>i * 8, times[i]);
  output(out);
  return 0;
}
