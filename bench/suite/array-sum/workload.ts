// ServerlessBench's "Array Sum": an array through a long chain of functions, sequential (an
// entry calls each stage in turn) and nested (each stage calls the next), both with chain.call.
import { chainRun, sameBytes, type Size, type TaskResult, type Workload } from '../types.js';
import { Xorshift32 } from '../random.js';
import { HEADER } from './reference.js';

const SHAPE: Record<Size, { values: number; stages: number }> = {
  test: { values: 1000, stages: 5 },
  small: { values: 100_000, stages: 20 },
  large: { values: 1_000_000, stages: 20 },
};

export const MODE = { stage: 0, sequential: 1, nested: 2 } as const;

function input(mode: number, size: Size): Uint8Array {
  const { values, stages } = SHAPE[size];
  const r = new Xorshift32(5);
  const bytes = new Uint8Array(HEADER + values * 4);
  const head = new DataView(bytes.buffer);
  head.setUint32(0, mode, true);
  head.setUint32(8, stages, true);
  head.setUint32(12, 1, true);
  const v = new Int32Array(bytes.buffer, HEADER);
  for (let i = 0; i < v.length; i++) v[i] = r.next() & 0xffff;
  return bytes;
}

/** The JavaScript side of both: the stages one after another from the main thread (a task cannot start another). */
async function js(task: (name: string, input: Uint8Array) => Promise<TaskResult>, bytes: Uint8Array): Promise<TaskResult> {
  const stages = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  let values = bytes.subarray(HEADER);
  let execMs = 0;
  let heapBytes = 0;
  for (let s = 0; s < stages; s++) {
    const next = new Uint8Array(HEADER + values.byteLength);
    new DataView(next.buffer).setUint32(4, s, true);
    next.set(values, HEADER);
    const r = await task('array-sum', next);
    values = r.output;
    execMs += r.execMs;
    heapBytes = Math.max(heapBytes, r.heapBytes);
  }
  return { output: values, execMs, heapBytes };
}

const common = { folder: 'array-sum', guests: ['array_sum'], js, check: sameBytes('array-sum') };

export const sequential: Workload = {
  ...common,
  name: 'array-sum-sequential',
  origin: 'ServerlessBench Array Sum (sequential chain)',
  summary: 'an i32 array through a chain of stages; an entry function calls each stage in turn (chain.call)',
  input: (size) => input(MODE.sequential, size),
  nuvola: (rt, bytes) => chainRun(rt, 'array_sum', bytes),
};

export const nested: Workload = {
  ...common,
  name: 'array-sum-nested',
  origin: 'ServerlessBench Array Sum (nested chain)',
  summary: 'the same chain nested: each stage calls the next (chain.call) and answers its answer',
  input: (size) => input(MODE.nested, size),
  nuvola: (rt, bytes) => chainRun(rt, 'array_sum', bytes),
};
