import { comm, input, outputString } from "nuvola";
// Monte Carlo pi as a group: each rank samples its share of points (the i32 input is the
// total), allreduce sums the hits, and every rank reports the estimate.
export function main(): i32 {
  const total = load<i32>(input().dataStart);
  const share = total / comm.size();
  let x: u64 = <u64>(comm.rank() + 1) * 0x9e3779b97f4a7c15;
  let hits = 0.0;
  for (let i = 0; i < share; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const px = <f64>(x >> 11) / 9007199254740992.0;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const py = <f64>(x >> 11) / 9007199254740992.0;
    if (px * px + py * py <= 1.0) hits += 1;
  }
  const counts = new Float64Array(2);
  counts[0] = hits;
  counts[1] = <f64>share;
  const sum = comm.allreduceF64(counts, comm.Op.SUM);
  outputString("rank " + comm.rank().toString() + ": pi ≈ " + (4 * sum[0] / sum[1]).toString());
  return 0;
}
