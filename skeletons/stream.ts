/**
 * Main thread. Streams: a skeleton over many items, one pump per pipeline stage and one lane
 * per farm replica, joined by bounded channels; an ordered stage reorders at its output.
 */
import type { InvokeInput, Runtime } from '../runtime/index.js';
import { toBytes } from '../runtime/input.js';
import { Channel } from './channel.js';
import { context, fail, settled, watchSignal, type Context, type Item, type RunOptions } from './context.js';
import { apply } from './interpreter.js';
import { AUTO_REPLICAS_PER_WORKER, type Skeleton } from './tree.js';

/**
 * Runs `node` over a stream of inputs and yields the outputs as they are ready: a pipeline's
 * stages work on different items at once, a farm's replicas on several. The first failure
 * stops the stream: no new call starts, the calls in flight are cancelled and waited for,
 * and the iterator throws a `E_SKELETON_STAGE` error naming the stage and the item.
 */
export async function* runStream(
  rt: Runtime,
  node: Skeleton,
  inputs: Iterable<InvokeInput> | AsyncIterable<InvokeInput>,
  options: RunOptions = {},
): AsyncGenerator<Uint8Array> {
  const ctx = context(rt, node, options);
  const unwatch = watchSignal(ctx);
  const capacity = Math.max(4, 2 * ctx.workers);
  const source = channel(ctx, capacity);
  const tasks: Promise<void>[] = [];
  tasks.push(
    (async () => {
      const iterator =
        Symbol.asyncIterator in inputs
          ? (inputs as AsyncIterable<InvokeInput>)[Symbol.asyncIterator]()
          : (inputs as Iterable<InvokeInput>)[Symbol.iterator]();
      let ended = false;
      try {
        for (let index = 0; ; index++) {
          // A source may take its time with the next input: a failure does not wait for it.
          const next = await Promise.race([Promise.resolve(iterator.next()), ctx.stopped.then(() => undefined)]);
          if (next === undefined || ctx.failure !== undefined) break;
          if (next.done === true) {
            ended = true;
            break;
          }
          await source.push({ index, data: toBytes(next.value) });
        }
      } catch (err) {
        fail(ctx, err);
      } finally {
        source.close();
        // Stopped early: tell the source, without waiting for it.
        if (!ended) void Promise.resolve(iterator.return?.()).catch(() => undefined);
      }
    })(),
  );
  const out = stage(ctx, node, source, capacity, tasks);
  let completed = false;
  try {
    for (;;) {
      const pulled = await out.pull();
      if (pulled === undefined || ctx.failure !== undefined) break;
      yield pulled[0].data;
    }
    completed = true;
  } finally {
    // Normal end, a failure, or the consumer stopped early: nothing new starts, and
    // everything in flight is waited for before the iterator returns or throws.
    if (!completed) fail(ctx, new Error('the stream was closed before its end'));
    await Promise.allSettled(tasks);
    await settled(ctx);
    unwatch();
  }
  if (ctx.failure !== undefined) throw ctx.failure;
}

function channel(ctx: Context, capacity: number): Channel<Item> {
  const ch = new Channel<Item>(capacity);
  ctx.channels.push(ch);
  if (ctx.failure !== undefined) ch.abort();
  return ch;
}

/** Starts the pumps of `node` reading `input`; returns the channel its outputs arrive on. */
function stage(ctx: Context, node: Skeleton, input: Channel<Item>, capacity: number, tasks: Promise<void>[]): Channel<Item> {
  if (node.kind === 'pipe') {
    let ch = input;
    for (const s of node.stages) ch = stage(ctx, s, ch, capacity, tasks);
    return ch;
  }
  const out = channel(ctx, capacity);
  const lanes =
    node.kind === 'farm' && !ctx.sequential ? (node.replicas === 'auto' ? AUTO_REPLICAS_PER_WORKER * ctx.workers : node.replicas) : 1;
  const ordered = node.kind !== 'farm' || node.ordered || ctx.sequential;
  const worker = node.kind === 'farm' ? node.worker : node;
  // Ordered output restores this stage's arrival order (not the stream index: an unordered
  // farm upstream delivers out of stream order, and waiting for stream order there could
  // block forever behind a full channel).
  let next = 0;
  const done = new Map<number, Item>();
  const waiters: (() => void)[] = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  const window = 4 * lanes;
  const lane = async (): Promise<void> => {
    for (;;) {
      // Ordered: do not run ahead of the oldest unfinished item by more than a window.
      while (ordered && done.size >= window && ctx.failure === undefined) await new Promise<void>((r) => waiters.push(r));
      const pulled = await input.pull();
      if (pulled === undefined || ctx.failure !== undefined) return;
      const [item, arrival] = pulled;
      const data = await apply(ctx, worker, item.data, `item ${item.index}`, item.index);
      if (!ordered) {
        await out.push({ index: item.index, data });
        continue;
      }
      done.set(arrival, { index: item.index, data });
      while (done.has(next)) {
        const ready = done.get(next)!;
        done.delete(next++);
        wake();
        await out.push(ready);
      }
    }
  };
  tasks.push(
    Promise.all(Array.from({ length: lanes }, lane)).then(
      () => out.close(),
      (err: unknown) => {
        fail(ctx, err);
        wake();
        out.close();
      },
    ),
  );
  return out;
}
