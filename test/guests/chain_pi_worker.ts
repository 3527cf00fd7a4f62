import { input, state } from "nuvola";
// One Monte Carlo worker: input (seed: i32, samples: i32); counts the random points of the unit
// square inside the quarter circle and appends (hits, samples) as two i64s to "pi".
export function main(): i32 {
  const arg = input();
  let x: u64 = <u64>load<i32>(arg.dataStart) * 2654435761 + 1;
  const samples = load<i32>(arg.dataStart + 4);
  let hits: i64 = 0;
  for (let i = 0; i < samples; i++) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    const px = <f64>(x >> 11) / 9007199254740992.0;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    const py = <f64>(x >> 11) / 9007199254740992.0;
    if (px * px + py * py <= 1.0) hits++;
  }
  const record = new Uint8Array(16);
  store<i64>(record.dataStart, hits);
  store<i64>(record.dataStart + 8, <i64>samples);
  state.append("pi", record);
  return 0;
}
