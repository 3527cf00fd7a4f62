// A SeBS-Flow-style workflow: MapReduce word count over generated text, as a nuvola/skeletons
// mapReduce (map step over pieces, shuffle, reduce step per bucket, merge).
import { mapReduce, partitions, run, type Skeleton } from 'nuvola/skeletons';
import { sameBytes, type Size, type TaskResult, type Workload } from '../types.js';
import { generateText, utf8 } from '../random.js';
import { merge } from './reference.js';

const BYTES: Record<Size, number> = { test: 16 << 10, small: 2 << 20, large: 16 << 20 };
const PIECE_BYTES = 256 << 10;

const skeleton: Skeleton = mapReduce({ mapper: 'wf_count', reducer: 'wf_total', partition: partitions.text({ pieceBytes: PIECE_BYTES }) });

/** The same pieces as the skeleton's partition (cut after a space). */
function pieces(text: Uint8Array): Uint8Array[] {
  return partitions.text({ pieceBytes: PIECE_BYTES }).split(text, 1);
}

async function js(task: (name: string, input: Uint8Array) => Promise<TaskResult>, text: Uint8Array): Promise<TaskResult> {
  const mapped = await Promise.all(pieces(text).map((p) => task('workflow-mapreduce', p)));
  return {
    output: merge(mapped.map((m) => m.output)),
    execMs: NaN,
    heapBytes: Math.max(...mapped.map((m) => m.heapBytes)),
  };
}

export const workload: Workload = {
  name: 'workflow-mapreduce',
  origin: 'SeBS-Flow MapReduce (map step), word count',
  summary: 'word count as a skeleton mapReduce: mappers over 256 KiB pieces, shuffle, reducers, merge sorted by word',
  guests: ['wf_count', 'wf_total'],
  timed: false,
  input: (size) => utf8(generateText(BYTES[size], 9)),
  nuvola: async (rt, input) => ({ output: await run(rt, skeleton, input), usages: [], cold: false }),
  js,
  check: sameBytes('workflow-mapreduce'),
};
