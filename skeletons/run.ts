/**
 * Main thread. The entry points that run a skeleton: `run` (one item), `runStream` and
 * `runAll` (a stream of items). The work is split by seam: context.ts holds a run's state and
 * failure, interpreter.ts runs a tree on one item, stream.ts pumps items through stages,
 * channel.ts is the bounded channel between them.
 */
import type { InvokeInput, Runtime } from '../runtime/index.js';
import { toBytes } from '../runtime/input.js';
import { context, fail, settled, watchSignal, type RunOptions } from './context.js';
import { apply } from './interpreter.js';
import { runStream } from './stream.js';
import type { Skeleton } from './tree.js';

export { checkFunctions, type Observer, type RunOptions } from './context.js';
export { iterationsKey } from './interpreter.js';
export { runStream } from './stream.js';

/** Runs `node` on one input and resolves with its output. */
export async function run(rt: Runtime, node: Skeleton, input?: InvokeInput, options: RunOptions = {}): Promise<Uint8Array> {
  const ctx = context(rt, node, options);
  const unwatch = watchSignal(ctx);
  try {
    return await apply(ctx, node, toBytes(input), 'item 0', 0);
  } catch (err) {
    fail(ctx, err);
    throw await settled(ctx);
  } finally {
    unwatch();
  }
}

/** Runs `node` on every input as a stream and resolves with the outputs (in input order unless an unordered farm is one of its top-level stages). */
export async function runAll(
  rt: Runtime,
  node: Skeleton,
  inputs: Iterable<InvokeInput> | AsyncIterable<InvokeInput>,
  options: RunOptions = {},
): Promise<Uint8Array[]> {
  const outputs: Uint8Array[] = [];
  for await (const output of runStream(rt, node, inputs, options)) outputs.push(output);
  return outputs;
}
