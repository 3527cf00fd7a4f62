// A SeBS-Flow-style loop: an ML training loop (epochs of SGD on generated linear data) as a
// nuvola/skeletons iterate, the data travelling with the model from one epoch to the next.
import { iterate, run, seq, type Skeleton } from 'nuvola/skeletons';
import { sameBytes, type Size, type TaskResult, type Workload } from '../types.js';
import { Xorshift32 } from '../random.js';

const SHAPE: Record<Size, { n: number; d: number; epochs: number }> = {
  test: { n: 200, d: 4, epochs: 5 },
  small: { n: 20_000, d: 8, epochs: 10 },
  large: { n: 200_000, d: 8, epochs: 10 },
};

function data(size: Size): Uint8Array {
  const { n, d } = SHAPE[size];
  const r = new Xorshift32(42);
  const bytes = new Uint8Array(16 + 8 * (d + 1) + 8 * n * d + 8 * n);
  const head = new DataView(bytes.buffer);
  head.setUint32(0, n, true);
  head.setUint32(4, d, true);
  head.setFloat64(8, 0.01, true);
  const x = new Float64Array(bytes.buffer, 16 + 8 * (d + 1), n * d);
  const y = new Float64Array(bytes.buffer, 16 + 8 * (d + 1) + 8 * n * d, n);
  const truth = Array.from({ length: d }, (_, j) => j - d / 2);
  for (let i = 0; i < n; i++) {
    let v = 3;
    for (let j = 0; j < d; j++) v += truth[j]! * (x[i * d + j] = r.float() * 2 - 1);
    y[i] = v + (r.float() - 0.5) * 0.1;
  }
  return bytes;
}

const epochs = (item: Uint8Array): number => {
  const n = new DataView(item.buffer, item.byteOffset).getUint32(0, true);
  return (Object.values(SHAPE).find((s) => s.n === n) ?? SHAPE.test).epochs;
};

const loop = (count: number): Skeleton => iterate(seq('wf_sgd_epoch'), { maxIterations: count });

async function js(task: (name: string, input: Uint8Array) => Promise<TaskResult>, item: Uint8Array): Promise<TaskResult> {
  let x = item;
  let heapBytes = 0;
  for (let i = 0; i < epochs(item); i++) {
    const r = await task('workflow-ml', x);
    x = r.output;
    heapBytes = Math.max(heapBytes, r.heapBytes);
  }
  return { output: x, execMs: NaN, heapBytes };
}

export const workload: Workload = {
  name: 'workflow-ml',
  origin: 'SeBS-Flow loop step, ML training',
  summary: 'epochs of SGD for a linear model as a skeleton iterate; model and data pass from epoch to epoch',
  guests: ['wf_sgd_epoch'],
  timed: false,
  input: data,
  nuvola: async (rt, input) => ({ output: await run(rt, loop(epochs(input)), input), usages: [], cold: false }),
  js,
  check: sameBytes('workflow-ml'),
};
