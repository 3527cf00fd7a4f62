// ServerlessBench's parallel ALU: the ALU split over four functions started at once and combined.
import { chainRun, type Size, type TaskResult, type Workload, sameBytes } from '../types.js';
import { text, utf8 } from '../random.js';
import { OPERATIONS } from '../alu/workload.js';

export const PARTS = 4;

/** The JavaScript side: the parts as tasks at once, their checksums combined on the main thread. */
async function js(task: (name: string, input: Uint8Array) => Promise<TaskResult>, input: Uint8Array): Promise<TaskResult> {
  const [parts = '1', n = '0', seed = '1'] = text(input).split(' ');
  const results = await Promise.all(Array.from({ length: Number(parts) }, (_, i) => task('alu', utf8(`${n} ${Number(seed) + i}`))));
  const acc = results.reduce((a, r) => (a ^ Number(text(r.output))) >>> 0, 0);
  return {
    output: utf8(String(acc)),
    execMs: Math.max(...results.map((r) => r.execMs)),
    heapBytes: Math.max(...results.map((r) => r.heapBytes)),
  };
}

export const workload: Workload = {
  name: 'alu-parallel',
  origin: 'ServerlessBench parallel ALU',
  summary: `the ALU in ${PARTS} functions at once (chain.call fan-out from an entry function), checksums combined`,
  guests: ['alu_parallel', 'alu/alu'],
  input: (size: Size) => utf8(`${PARTS} ${OPERATIONS[size] / PARTS} 7`),
  nuvola: (rt, input) => chainRun(rt, 'alu_parallel', input),
  js,
  check: sameBytes('alu-parallel'),
};
