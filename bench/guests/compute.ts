import { inputString, outputString } from "nuvola";

// Compute-heavy work for `nuvola bench preempt`, chosen by the input "kind n":
// "mandel n": one 640-pixel Mandelbrot row at n iterations per pixel (loops);
// "fib n":    recursive Fibonacci (calls, no loop);
// "array n":  n passes of a tight sum over a 4096-element array (a hot inner loop);
// "spin":     loops forever (the runaway).
const data = new Int32Array(4096);

function mandelRow(maxIter: i32): i32 {
  let escaped = 0;
  const y0: f64 = 0.1;
  for (let px = 0; px < 640; px++) {
    const x0 = -2.0 + (<f64>px * 3.0) / 640.0;
    let x: f64 = 0;
    let y: f64 = 0;
    let i = 0;
    while (i < maxIter && x * x + y * y <= 4.0) {
      const t = x * x - y * y + x0;
      y = 2 * x * y + y0;
      x = t;
      i++;
    }
    escaped += i;
  }
  return escaped;
}

function fib(n: i32): i32 {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

function arraySum(passes: i32): i32 {
  let sum = 0;
  for (let p = 0; p < passes; p++) {
    for (let i = 0; i < data.length; i++) sum += unchecked(data[i]) ^ p;
  }
  return sum;
}

export function main(): i32 {
  const parts = inputString().split(" ");
  const kind = parts[0];
  const n = parts.length > 1 ? I32.parseInt(parts[1]) : 0;
  let r = 0;
  if (kind == "mandel") r = mandelRow(n);
  else if (kind == "fib") r = fib(n);
  else if (kind == "array") r = arraySum(n);
  else if (kind == "spin") while (true) r++;
  outputString(r.toString());
  return 0;
}
