import { input, output } from "nuvola";
// One step of gradient descent for y = w·x + b on 64 fixed points (y = 3x + 1 plus a small
// fixed wobble). Input and output: f64 w, f64 b, f64 loss (the mean squared error before the step).
export function main(): i32 {
  const state = input();
  if (state.length != 24) return 1;
  let w = load<f64>(state.dataStart);
  let b = load<f64>(state.dataStart + 8);
  let gw = 0.0;
  let gb = 0.0;
  let loss = 0.0;
  for (let i = 0; i < 64; i++) {
    const x = <f64>i / 64.0;
    const y = 3.0 * x + 1.0 + <f64>(((i * 37) % 11) - 5) * 0.001;
    const e = w * x + b - y;
    gw += e * x;
    gb += e;
    loss += e * e;
  }
  w -= (0.5 * gw) / 32.0;
  b -= (0.5 * gb) / 32.0;
  const out = new Uint8Array(24);
  store<f64>(out.dataStart, w);
  store<f64>(out.dataStart + 8, b);
  store<f64>(out.dataStart + 16, loss / 64.0);
  output(out);
  return 0;
}
