/** The workloads of `nuvola bench suite`, in the order they run. */
import type { Workload } from './types.js';
import { workload as dynamicHtml } from './dynamic-html/workload.js';
import { workload as thumbnailer } from './thumbnailer/workload.js';
import { workload as compression } from './compression/workload.js';
import { workload as graphPagerank } from './graph-pagerank/workload.js';
import { workload as graphMst } from './graph-mst/workload.js';
import { workload as graphBfs } from './graph-bfs/workload.js';
import { workload as alu } from './alu/workload.js';
import { workload as factors } from './factors/workload.js';
import { workload as matmul } from './matmul/workload.js';
import { workload as dna } from './dna-visualisation/workload.js';
import { workload as crud } from './crud-api/workload.js';
import { workload as aluParallel } from './alu-parallel/workload.js';
import { nested as arraySumNested, sequential as arraySumSequential } from './array-sum/workload.js';
import { viaMessages, viaRedis, viaState } from './data-transfer/workload.js';
import { workload as mapReduce } from './workflow-mapreduce/workload.js';
import { workload as mlLoop } from './workflow-ml/workload.js';

export const WORKLOADS: readonly Workload[] = [
  dynamicHtml,
  crud,
  thumbnailer,
  compression,
  graphPagerank,
  graphMst,
  graphBfs,
  dna,
  alu,
  aluParallel,
  arraySumSequential,
  arraySumNested,
  viaState,
  viaMessages,
  viaRedis,
  factors,
  matmul,
  mapReduce,
  mlLoop,
];

/** The workloads named (all when `names` is empty); an unknown name is an error that lists the known ones. */
export function selectWorkloads(names: readonly string[]): Workload[] {
  if (names.length === 0) return [...WORKLOADS];
  return names.map((name) => {
    const w = WORKLOADS.find((x) => x.name === name);
    if (w === undefined) throw new Error(`unknown workload '${name}'; known: ${WORKLOADS.map((x) => x.name).join(', ')}`);
    return w;
  });
}
