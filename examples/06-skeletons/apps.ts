/**
 * The four skeleton applications — Mandelbrot (farm), an image pipeline of five filters
 * (pipe, and its normal form), word count (keyed map-reduce) and matrix multiplication
 * (divide & conquer) — with their inputs and sequential references. Shared by the example,
 * the tests and `nuvola bench skeletons`.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildGuest, type Runtime } from 'nuvola';
import { dc, farm, mapReduce, partitions, pipe, seq, unframe, type Skeleton } from 'nuvola/skeletons';

/** The project root: the nearest folder up from here that holds the skeleton guests (works from the sources and from dist/). */
const root = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'guest', 'examples', 'skeletons'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('guest/examples/skeletons not found above examples/06-skeletons');
    dir = parent;
  }
  return dir;
})();
const sources = join(root, 'guest', 'examples', 'skeletons');
const sdk = join(root, 'guest', 'sdk', 'nuvola');

export const FILTERS = ['img_saturate', 'img_emboss', 'img_gamma', 'img_sharpen', 'img_grayscale'] as const;
export const GUESTS = ['mandel_row', ...FILTERS, 'wc_map', 'wc_reduce', 'mm_divide', 'mm_combine', 'mm_base', 'echo', 'sgd_step'] as const;

async function mtime(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.mtimeMs ?? 0;
}

/**
 * Builds (at -O3) the skeleton guests, or reuses builds in `cacheDir` newer than their
 * sources and the SDK, and registers every one on `rt`.
 */
export async function registerGuests(rt: Runtime, cacheDir = join(tmpdir(), 'nuvola-skeleton-guests')): Promise<void> {
  await mkdir(cacheDir, { recursive: true });
  const shared = Math.max(
    await mtime(join(sources, '_image.ts')),
    await mtime(join(sources, '_matrix.ts')),
    ...(await Promise.all(['index.ts', 'io.ts', 'frames.ts'].map((f) => mtime(join(sdk, f))))),
  );
  for (const name of GUESTS) {
    const source = join(sources, `${name}.ts`);
    const target = join(cacheDir, `${name}.wasm`);
    const built = await mtime(target);
    let bytes: Uint8Array;
    if (built > shared && built > (await mtime(source))) bytes = await readFile(target);
    else {
      bytes = await buildGuest(source);
      // Written aside and renamed: concurrent builders never see half a file.
      const temp = `${target}.${process.pid}.tmp`;
      await writeFile(temp, bytes);
      await rename(temp, target);
    }
    await rt.register(name, bytes);
  }
}

/** A small deterministic generator (xorshift32). */
function random(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

export const sha256 = (data: Uint8Array | Uint8Array[]): string => {
  const h = createHash('sha256');
  for (const d of Array.isArray(data) ? data : [data]) h.update(d);
  return h.digest('hex');
};

// ---- Mandelbrot: a farm over rows -------------------------------------------------------

export interface MandelParams {
  width: number;
  height: number;
  maxIter: number;
}

export function mandelRows(p: MandelParams): Uint8Array[] {
  return Array.from({ length: p.height }, (_, row) => new Uint8Array(new Uint32Array([row, p.width, p.height, p.maxIter]).buffer));
}

export const mandelSkeleton = (replicas: number | 'auto' = 'auto'): Skeleton => farm(seq('mandel_row'), { replicas });

/** The same rows computed in JavaScript with the same f64 operations, for bit-for-bit checks. */
export function mandelReference(p: MandelParams): Uint8Array[] {
  return Array.from({ length: p.height }, (_, row) => {
    const out = new Uint16Array(p.width);
    const cy = -1.2 + (2.4 * row) / p.height;
    for (let x = 0; x < p.width; x++) {
      const cx = -2.0 + (3.0 * x) / p.width;
      let zx = 0;
      let zy = 0;
      let i = 0;
      while (i < p.maxIter && zx * zx + zy * zy <= 4.0) {
        const t = zx * zx - zy * zy + cx;
        zy = 2.0 * zx * zy + cy;
        zx = t;
        i++;
      }
      out[x] = i;
    }
    return new Uint8Array(out.buffer);
  });
}

// ---- Image pipeline: five filters -------------------------------------------------------

/** `count` RGBA images of `width`×`height` (gradients plus noise), each u32 w, u32 h, pixels. */
export function makeImages(count: number, width: number, height: number, seed = 7): Uint8Array[] {
  const next = random(seed);
  return Array.from({ length: count }, (_, n) => {
    const img = new Uint8Array(8 + width * height * 4);
    const view = new DataView(img.buffer);
    view.setUint32(0, width, true);
    view.setUint32(4, height, true);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const at = 8 + (y * width + x) * 4;
        img[at] = (x * 255) / width + next() * 40;
        img[at + 1] = (y * 255) / height + next() * 40;
        img[at + 2] = ((x + y + n * 17) * 3) & 255;
        img[at + 3] = 255;
      }
    }
    return img;
  });
}

/** The pipeline as written: one stage per filter. */
export const imagePipeline = (): Skeleton => pipe(...FILTERS);

// ---- Word count: keyed map-reduce -------------------------------------------------------

const VOCABULARY = (() => {
  const next = random(11);
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  return Array.from({ length: 2000 }, () =>
    Array.from({ length: 2 + Math.floor(next() * 8) }, () => letters[Math.floor(next() * 26)]).join(''),
  );
})();

/** `words` words drawn (Zipf-like) from a fixed vocabulary, with punctuation, capitals and newlines. */
export function makeText(words: number, seed = 3): string {
  const next = random(seed);
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    let word = VOCABULARY[Math.floor(VOCABULARY.length * next() ** 3)]!;
    if (next() < 0.1) word = word[0]!.toUpperCase() + word.slice(1);
    out.push(word, next() < 0.05 ? '.\n' : next() < 0.1 ? ', ' : ' ');
  }
  return out.join('');
}

/** Keyed map-reduce over pieces of about 256 KiB (or `pieces` pieces). */
export const wordCountSkeleton = (pieces: number | 'workers' | { pieceBytes: number } = { pieceBytes: 256 * 1024 }): Skeleton =>
  mapReduce({ mapper: 'wc_map', reducer: 'wc_reduce', partition: partitions.text(pieces) });

/**
 * Word counts as wc_map tokenizes the UTF-8 bytes of `text`: runs of ASCII letters and digits
 * and bytes ≥ 128, ASCII letters lower-cased; words keyed by their bytes as Latin-1.
 */
export function countWords(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  const bytes = Buffer.from(text, 'utf8').toString('latin1');
  for (const word of bytes.replace(/[A-Z]+/g, (w) => w.toLowerCase()).split(/[^a-z0-9\u0080-\u00ff]+/)) {
    if (word.length > 0) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

/** The counts in a word-count output (word, u32 count, … framed). */
export function decodeCounts(output: Uint8Array): Map<string, number> {
  const kv = unframe(output);
  const counts = new Map<string, number>();
  for (let i = 0; i < kv.length; i += 2) {
    const v = kv[i + 1]!;
    counts.set(Buffer.from(kv[i]!).toString('latin1'), new DataView(v.buffer, v.byteOffset, 4).getUint32(0, true));
  }
  return counts;
}

// ---- Matrix multiplication: divide & conquer --------------------------------------------

/** u32 n, then A and B: n×n i32 each, small random values. */
export function matmulProblem(n: number, seed = 5): Uint8Array {
  const next = random(seed);
  const data = new Int32Array(1 + 2 * n * n);
  data[0] = n;
  for (let i = 1; i < data.length; i++) data[i] = Math.floor(next() * 2001) - 1000;
  return new Uint8Array(data.buffer);
}

/** Divide until blocks are `baseN` wide or less, then multiply directly. */
export const matmulSkeleton = (baseN: number): Skeleton =>
  dc('mm_divide', 'mm_combine', 'mm_base', (p) => new DataView(p.buffer, p.byteOffset, 4).getUint32(0, true) <= baseN);

/** The product in JavaScript (wrapping i32 arithmetic, as the guests): u32 n, then C. */
export function matmulReference(problem: Uint8Array): Uint8Array {
  const v = new Int32Array(problem.buffer, problem.byteOffset, problem.byteLength / 4);
  const n = v[0]!;
  const a = v.subarray(1, 1 + n * n);
  const b = v.subarray(1 + n * n);
  const out = new Int32Array(1 + n * n);
  out[0] = n;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      for (let j = 0; j < n; j++) out[1 + i * n + j] = (out[1 + i * n + j]! + Math.imul(aik, b[k * n + j]!)) | 0;
    }
  }
  return new Uint8Array(out.buffer);
}

/** The plain sequential run: the same functions, one call at a time, no skeleton. */
export async function sequentially(rt: Runtime, fns: readonly string[], inputs: readonly Uint8Array[]): Promise<Uint8Array[]> {
  const outputs: Uint8Array[] = [];
  for (let data of inputs) {
    for (const fn of fns) {
      const r = await rt.invoke(fn, data);
      if (r.returnCode !== 0) throw new Error(`${fn} returned ${r.returnCode}`);
      data = r.output;
    }
    outputs.push(data);
  }
  return outputs;
}
