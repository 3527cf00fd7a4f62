/**
 * `nuvola/skeletons`: compose registered functions into parallel programs (pipeline, farm,
 * map, reduce, keyed map-reduce, divide & conquer, iteration), rewrite them into equivalent
 * faster forms, and predict their speed. Built on the public runtime API only.
 */
import type { HostHandler, Runtime } from '../runtime/index.js';
import { frame, unframe } from './frames.js';
import { remember } from './registry.js';
import { checkFunctions, run, runAll } from './run.js';
import type { Skeleton } from './tree.js';

export { seq, pipe, farm, map, reduce, mapReduce, dc, iterate, partitions, gathers, functionsOf } from './tree.js';
export type { Skeleton, Seq, Pipe, Farm, MapNode, Reduce, MapReduce, DivideConquer, Iterate, Partition, Gather } from './tree.js';
export { run, runAll, runStream, checkFunctions } from './run.js';
export type { RunOptions, Observer } from './run.js';
export { rewrite, normalize, explain, statefulFunctions, RULES } from './rewrite.js';
export type { RuleName, RewriteContext } from './rewrite.js';
export { Profile, DEFAULT_TRANSPORT } from './profile.js';
export type { Transport, CalibratedItem } from './profile.js';
export { calibrate, calibrateTransport } from './calibrate.js';
export { predict, chooseReplicas, paysOff } from './predict.js';
export type { Prediction, Workload } from './predict.js';
export { frame, unframe } from './frames.js';

/**
 * Registers `node` under `name`, so `rt.invoke(name, input)` (and `invokeChain`, and a
 * guest's `chain.call`) runs it like a function. With `stream: true` the input is a framed
 * list of items and the output the framed list of their outputs, streamed through the
 * skeleton; otherwise the input is one item.
 */
export function register(rt: Runtime, name: string, node: Skeleton, options: { stream?: boolean; timeoutMs?: number } = {}): void {
  checkFunctions(rt, node);
  const handler: HostHandler = async (input, { signal }) =>
    options.stream === true
      ? frame(await runAll(rt, node, unframe(input, `the input of '${name}'`), { signal }))
      : run(rt, node, input, { signal });
  rt.registerHandler(name, handler, options.timeoutMs === undefined ? undefined : { timeoutMs: options.timeoutMs });
  remember(rt, name, node, handler);
}
