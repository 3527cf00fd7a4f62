/**
 * The CPU path of every library kernel: what runs when no GPU adapter is available (or
 * `mode: 'cpu'`), and the reference the GPU results are checked against. Plain loops in an
 * order that keeps memory access sequential; sums in f64 and rounded once at the end, so the
 * CPU result is the more accurate one.
 */

export function matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const row = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p]!;
      if (aip === 0) continue;
      const brow = p * n;
      for (let j = 0; j < n; j++) c[row + j]! += aip * b[brow + j]!;
    }
  }
  return Float32Array.from(c);
}

export function elementwise(x: Float32Array, y: Float32Array, op: 'axpby' | 'mul', alpha = 1, beta = 1): Float32Array {
  const out = new Float32Array(x.length);
  if (op === 'mul') for (let i = 0; i < x.length; i++) out[i] = x[i]! * y[i]!;
  else for (let i = 0; i < x.length; i++) out[i] = alpha * x[i]! + beta * y[i]!;
  return out;
}

export function sum(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]!;
  return Math.fround(s);
}

export function max(x: Float32Array): number {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) if (x[i]! > m) m = x[i]!;
  return m;
}

export function scan(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) out[i] = s += x[i]!;
  return out;
}

export function conv2d(img: Float32Array, h: number, w: number, k: Float32Array, kh: number, kw: number): Float32Array {
  const out = new Float32Array(h * w);
  const ry = kh >> 1;
  const rx = kw >> 1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let j = 0; j < kh; j++) {
        const yy = y + j - ry;
        if (yy < 0 || yy >= h) continue;
        for (let i = 0; i < kw; i++) {
          const xx = x + i - rx;
          if (xx >= 0 && xx < w) acc += img[yy * w + xx]! * k[j * kw + i]!;
        }
      }
      out[y * w + x] = acc;
    }
  }
  return out;
}
