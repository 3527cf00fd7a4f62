/**
 * The WGSL kernels of the library. Every workgroup has at most 128 invocations (the limit of
 * the compatibility feature level Mesa's software renderer gives). Dispatches larger than
 * 65535 workgroups in x spill into y; kernels rebuild the flat index from both.
 */

/** Tiled matrix product C (m×n) = A (m×k) · B (k×n), row-major f32; 16×16 tiles, 2 rows per invocation. */
export const MATMUL = /* wgsl */ `
struct Dims { m: u32, k: u32, n: u32, pad: u32 }
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> c: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;
const T: u32 = 16u;
var<workgroup> ta: array<array<f32, 16>, 16>;
var<workgroup> tb: array<array<f32, 16>, 16>;
@compute @workgroup_size(16, 8)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let col = w.x * T + l.x;
  let row0 = w.y * T + l.y;
  let row1 = row0 + 8u;
  var acc0 = 0.0;
  var acc1 = 0.0;
  let tiles = (d.k + T - 1u) / T;
  for (var t = 0u; t < tiles; t++) {
    for (var h = 0u; h < 2u; h++) {
      let r = l.y + h * 8u;
      let ar = w.y * T + r;
      let ac = t * T + l.x;
      var av = 0.0;
      if (ar < d.m && ac < d.k) { av = a[ar * d.k + ac]; }
      ta[r][l.x] = av;
      let br = t * T + r;
      var bv = 0.0;
      if (br < d.k && col < d.n) { bv = b[br * d.n + col]; }
      tb[r][l.x] = bv;
    }
    workgroupBarrier();
    for (var i = 0u; i < T; i++) {
      acc0 += ta[l.y][i] * tb[i][l.x];
      acc1 += ta[l.y + 8u][i] * tb[i][l.x];
    }
    workgroupBarrier();
  }
  if (col < d.n && row0 < d.m) { c[row0 * d.n + col] = acc0; }
  if (col < d.n && row1 < d.m) { c[row1 * d.n + col] = acc1; }
}`;

/** out = alpha · x + beta · y, or out = x · y elementwise (op 1); grid-stride loop. */
export const ELEMENTWISE = /* wgsl */ `
struct Params { n: u32, op: u32, alpha: f32, beta: f32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> y: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@compute @workgroup_size(128)
fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let stride = nw.x * 128u;
  for (var i = g.x; i < p.n; i += stride) {
    if (p.op == 1u) { out[i] = x[i] * y[i]; } else { out[i] = p.alpha * x[i] + p.beta * y[i]; }
  }
}`;

/** One pass of a reduction: each workgroup folds a grid-stride share of `n` values into one (op 0 sum, 1 max). */
export const REDUCE = /* wgsl */ `
struct Params { n: u32, op: u32, start: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> partial: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
var<workgroup> s: array<f32, 128>;
fn combine(a: f32, b: f32) -> f32 { if (p.op == 1u) { return max(a, b); } return a + b; }
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let stride = nw.x * 128u;
  var acc = 0.0;
  // The fold's start, from the host: -inf for max (a constant -inf does not compile).
  if (p.op == 1u) { acc = bitcast<f32>(p.start); }
  for (var i = w.x * 128u + l.x; i < p.n; i += stride) { acc = combine(acc, x[i]); }
  s[l.x] = acc;
  workgroupBarrier();
  for (var h = 64u; h > 0u; h = h >> 1u) {
    if (l.x < h) { s[l.x] = combine(s[l.x], s[l.x + h]); }
    workgroupBarrier();
  }
  if (l.x == 0u) { partial[w.x] = s[0]; }
}`;

/** Inclusive scan of each 128-element block; writes each block's total to `sums`. */
export const SCAN_BLOCKS = /* wgsl */ `
struct Params { n: u32, blocksPerRow: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> sums: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
var<workgroup> s: array<f32, 128>;
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let block = w.x + w.y * p.blocksPerRow;
  let i = block * 128u + l.x;
  var v = 0.0;
  if (i < p.n) { v = x[i]; }
  s[l.x] = v;
  workgroupBarrier();
  for (var off = 1u; off < 128u; off = off << 1u) {
    var add = 0.0;
    if (l.x >= off) { add = s[l.x - off]; }
    workgroupBarrier();
    s[l.x] = s[l.x] + add;
    workgroupBarrier();
  }
  if (i < p.n) { x[i] = s[l.x]; }
  if (l.x == 127u) { sums[block] = s[127]; }
}`;

/** Adds the scanned total of all earlier blocks to every element of a block. */
export const SCAN_ADD = /* wgsl */ `
struct Params { n: u32, blocksPerRow: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> sums: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@compute @workgroup_size(128)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) w: vec3u) {
  let block = w.x + w.y * p.blocksPerRow;
  let i = block * 128u + l.x;
  if (block > 0u && i < p.n) { x[i] = x[i] + sums[block - 1u]; }
}`;

/** 2-D convolution of an h×w image with a kh×kw kernel (odd sizes), same size out, zeros outside. */
export const CONV2D = /* wgsl */ `
struct Dims { h: u32, w: u32, kh: u32, kw: u32 }
@group(0) @binding(0) var<storage, read> img: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> d: Dims;
@compute @workgroup_size(16, 8)
fn main(@builtin(global_invocation_id) g: vec3u) {
  let x = g.x;
  let y = g.y;
  if (x >= d.w || y >= d.h) { return; }
  let ry = i32(d.kh / 2u);
  let rx = i32(d.kw / 2u);
  var acc = 0.0;
  for (var j = 0u; j < d.kh; j++) {
    for (var i = 0u; i < d.kw; i++) {
      let yy = i32(y) + i32(j) - ry;
      let xx = i32(x) + i32(i) - rx;
      if (yy >= 0 && yy < i32(d.h) && xx >= 0 && xx < i32(d.w)) {
        acc += img[u32(yy) * d.w + u32(xx)] * k[j * d.kw + i];
      }
    }
  }
  out[y * d.w + x] = acc;
}`;
