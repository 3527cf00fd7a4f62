// A SeBS-Flow-style loop in JavaScript: one epoch of stochastic gradient descent for a linear
// model, the body of the ML-style workflow. Item: u32 n, u32 d, f64 learning rate, f64 weights
// [d + 1] (bias first), f64 x[n × d], f64 y[n]; answers the same item with the weights updated.

export function epoch(item: Uint8Array): Uint8Array {
  const out = item.slice();
  const head = new DataView(out.buffer);
  const n = head.getUint32(0, true);
  const d = head.getUint32(4, true);
  const rate = head.getFloat64(8, true);
  const w = new Float64Array(out.buffer, 16, d + 1);
  const x = new Float64Array(out.buffer, 16 + 8 * (d + 1), n * d);
  const y = new Float64Array(out.buffer, 16 + 8 * (d + 1) + 8 * n * d, n);
  for (let i = 0; i < n; i++) {
    let prediction = w[0]!;
    for (let j = 0; j < d; j++) prediction += w[j + 1]! * x[i * d + j]!;
    const step = rate * (prediction - y[i]!);
    w[0]! -= step;
    for (let j = 0; j < d; j++) w[j + 1]! -= step * x[i * d + j]!;
  }
  return out;
}

export const reference = epoch;
