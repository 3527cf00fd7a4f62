import { input, output } from "nuvola";

// One epoch of SGD for a linear model (bench/suite/workflow-ml/reference.ts): the item back with its weights updated.
export function main(): i32 {
  const item = input();
  const base = item.dataStart;
  const n = <usize>load<u32>(base);
  const d = <usize>load<u32>(base, 4);
  const rate = load<f64>(base, 8);
  const w = base + 16;
  const x = w + ((d + 1) << 3);
  const y = x + ((n * d) << 3);
  for (let i: usize = 0; i < n; i++) {
    const row = x + ((i * d) << 3);
    let prediction = load<f64>(w);
    for (let j: usize = 0; j < d; j++) prediction += load<f64>(w + ((j + 1) << 3)) * load<f64>(row + (j << 3));
    const step = rate * (prediction - load<f64>(y + (i << 3)));
    store<f64>(w, load<f64>(w) - step);
    for (let j: usize = 0; j < d; j++) {
      const at = w + ((j + 1) << 3);
      store<f64>(at, load<f64>(at) - step * load<f64>(row + (j << 3)));
    }
  }
  output(item);
  return 0;
}
