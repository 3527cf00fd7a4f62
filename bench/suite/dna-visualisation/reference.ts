// SeBS 504.dna-visualisation in JavaScript: a DNA sequence drawn as a squiggle — two points per
// base, x advancing half a step each: A a peak and T a valley (back to the line), G a rise
// and C a fall by one. Only the y values are written (x is 0.5 × the index), as f64, after the start (0).

export function reference(input: Uint8Array): Uint8Array {
  const ys = new Float64Array(1 + 2 * input.length);
  let y = 0;
  let k = 1;
  for (let i = 0; i < input.length; i++) {
    switch (input[i]) {
      case 65: // A
        ys[k++] = y + 0.5;
        ys[k++] = y;
        break;
      case 84: // T
        ys[k++] = y - 0.5;
        ys[k++] = y;
        break;
      case 71: // G
        ys[k++] = y + 0.5;
        ys[k++] = ++y;
        break;
      case 67: // C
        ys[k++] = y - 0.5;
        ys[k++] = --y;
        break;
      default: // N and others: flat
        ys[k++] = y;
        ys[k++] = y;
    }
  }
  return new Uint8Array(ys.buffer);
}
