/**
 * Main thread. Runs skeleton trees on a runtime through its public API only: `invoke` for a
 * single function, `invokeChain` for a sequential composition (its stages stay on one warm
 * worker), host-side partitions, gathers and shuffles between them. Streams flow through
 * bounded channels, one pump per pipeline stage and one lane per farm replica.
 */
import { setMaxListeners } from 'node:events';
import { performance as nodePerformance } from 'node:perf_hooks';
import {
  ErrorCode,
  InvalidOptionError,
  NuvolaError,
  RegistryError,
  SkeletonError,
  type InvokeInput,
  type Runtime,
} from '../runtime/index.js';
import { frame, unframe } from './frames.js';
import { registeredSkeleton } from './registry.js';
import {
  AUTO_REPLICAS_PER_WORKER,
  functionsOf,
  type DivideConquer,
  type Iterate,
  type MapNode,
  type MapReduce,
  type Reduce,
  type Skeleton,
} from './tree.js';

/** What calibration (see model.ts) learns from a run: every call, host step and shape. */
export interface Observer {
  /** A call took `ms` in all, of which `mainMs` busy on the main thread (sending, receiving). */
  call(fn: string, inBytes: number, outBytes: number, ms: number, mainMs: number): void;
  host(step: string, bytes: number, ms: number): void;
  shape(key: string, value: number): void;
}

export interface RunOptions {
  /**
   * Stops the run when aborted: no new call starts, the run's calls in flight are cancelled
   * (as `invoke(…, { signal })` cancels a call), and the run rejects with the signal's reason.
   */
  signal?: AbortSignal;
  /** One call at a time, in order: the sequential run a skeleton is checked and calibrated against. */
  sequential?: boolean;
  /** Told about every call and host step (calibration). */
  observe?: Observer;
}

interface Context {
  rt: Runtime;
  /** Resolves at the first failure: whatever waits (a slow source) stops waiting. */
  stopped: Promise<void>;
  stop: () => void;
  /** Stage errors made by this run (others, from a nested run, are wrapped as this run's). */
  own: WeakSet<Error>;
  /** Registered skeletons this run names (transitively), which it runs inline. */
  nested: Map<string, Skeleton>;
  workers: number;
  sequential: boolean;
  observe: Observer | undefined;
  signal: AbortSignal | undefined;
  /** Aborted at the first failure: every call of the run is made with its signal, so it cancels them. */
  calls: AbortController;
  failure: Error | undefined;
  inflight: Set<Promise<unknown>>;
  channels: Channel<Item>[];
  /** With `sequential`: the tail of the one-call-at-a-time queue. */
  turn: Promise<unknown>;
}

interface Item {
  index: number;
  data: Uint8Array;
}

const encoder = new TextEncoder();

function toBytes(input: InvokeInput): Uint8Array {
  if (input === undefined) return new Uint8Array(0);
  if (typeof input === 'string') return encoder.encode(input);
  if (input instanceof Uint8Array) return input;
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  throw new InvalidOptionError(ErrorCode.INVALID_OPTION, 'a skeleton input must be a Uint8Array, an ArrayBuffer, a string or undefined', {
    path: 'input',
  });
}

/** Fails with `E_UNKNOWN_FUNCTION` when the skeleton names a function the runtime does not have. */
export function checkFunctions(rt: Runtime, node: Skeleton): void {
  const known = new Set(rt.functions());
  for (const fn of functionsOf(node)) {
    if (!known.has(fn)) {
      throw new RegistryError(
        ErrorCode.UNKNOWN_FUNCTION,
        `the skeleton names '${fn}', which is not registered; register() it before running the skeleton`,
        {
          function: fn,
        },
      );
    }
  }
}

/**
 * The registered skeletons `node` names, transitively, by name: they run inside the run that
 * names them, so they may not name each other in a cycle. Looked up once per run.
 */
function nestedSkeletons(
  rt: Runtime,
  node: Skeleton,
  path: readonly string[] = [],
  into = new Map<string, Skeleton>(),
): Map<string, Skeleton> {
  for (const fn of functionsOf(node)) {
    const inner = registeredSkeleton(rt, fn);
    if (inner === undefined) continue;
    if (path.includes(fn)) {
      throw new SkeletonError(ErrorCode.INVALID_SKELETON, `registered skeletons name each other in a cycle: ${[...path, fn].join(' → ')}`, {
        cycle: [...path, fn],
      });
    }
    into.set(fn, inner);
    nestedSkeletons(rt, inner, [...path, fn], into);
  }
  return into;
}

function context(rt: Runtime, node: Skeleton, options: RunOptions): Context {
  checkFunctions(rt, node);
  const nested = nestedSkeletons(rt, node);
  options.signal?.throwIfAborted();
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const calls = new AbortController();
  // One listener per call in flight: thousands of them are expected, not a leak.
  setMaxListeners(0, calls.signal);
  return {
    rt,
    stopped,
    stop,
    own: new WeakSet(),
    nested,
    workers: rt.options.workers,
    sequential: options.sequential === true,
    observe: options.observe,
    signal: options.signal,
    calls,
    failure: undefined,
    inflight: new Set(),
    channels: [],
    turn: Promise.resolve(),
  };
}

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

/** Waits for every call in flight, then answers the first failure. */
async function settled(ctx: Context): Promise<Error> {
  while (ctx.inflight.size > 0) await Promise.allSettled([...ctx.inflight]);
  return ctx.failure ?? new Error('no failure');
}

function fail(ctx: Context, err: unknown): void {
  if (ctx.failure !== undefined) return;
  ctx.failure = err instanceof Error ? err : new Error(String(err));
  for (const ch of ctx.channels) ch.abort();
  ctx.calls.abort(ctx.failure);
  ctx.stop();
}

/** Makes an abort of the run's signal fail the run at once; returns the undo. */
function watchSignal(ctx: Context): () => void {
  const signal = ctx.signal;
  if (signal === undefined) return () => {};
  const onAbort = (): void => fail(ctx, signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
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

/** Runs `node` on one item. `where` names the item (and part) in errors. */
async function apply(ctx: Context, node: Skeleton, data: Uint8Array, where: string, item: number): Promise<Uint8Array> {
  switch (node.kind) {
    case 'seq':
      return call(ctx, node.fns, data, where, item);
    case 'pipe':
      for (const s of node.stages) data = await apply(ctx, s, data, where, item);
      return data;
    case 'farm':
      return apply(ctx, node.worker, data, where, item);
    case 'map':
      return applyMap(ctx, node, data, where, item);
    case 'reduce': {
      const values = guard(ctx, node.fn, where, item, () =>
        hostStep(ctx, `unframe:${node.fn}`, data.byteLength, () => unframe(data, `the input of reduce '${node.fn}'`)),
      );
      return reduceValues(ctx, node, values, where, item);
    }
    case 'mapReduce':
      return applyMapReduce(ctx, node, data, where, item);
    case 'dc':
      return solve(ctx, node, data, where, item, 0);
    case 'iterate': {
      let x = data;
      for (let i = 1; i <= node.maxIterations; i++) {
        x = await apply(ctx, node.body, x, `${where}, iteration ${i}`, item);
        if (guard(ctx, 'until', where, item, () => node.until(x, i)) || i === node.maxIterations) {
          ctx.observe?.shape(iterationsKey(node), i);
          break;
        }
      }
      return x;
    }
  }
}

/** Which shape key counts the iterations of an iterate node (by the functions its body runs). */
export function iterationsKey(node: Iterate): string {
  return `iterations:${[...functionsOf(node.body)].join(',')}`;
}

function hostStep<T>(ctx: Context, step: string, bytes: number, fn: () => T): T {
  const t = performance.now();
  const result = fn();
  ctx.observe?.host(step, bytes, performance.now() - t);
  return result;
}

/** Runs a user predicate or partition; what it throws becomes a stage error. */
function guard<T>(ctx: Context, what: string, where: string, item: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const error = stageError(ctx, what, where, item, err);
    fail(ctx, error);
    throw error;
  }
}

function stageError(ctx: Context, fn: string, where: string, item: number, cause: unknown, returnCode?: number): SkeletonError {
  // This run's own stage error passes through; one from another run (a registered skeleton
  // reached some other way) is wrapped, so that function and item are this run's.
  if (cause instanceof SkeletonError && ctx.own.has(cause)) return cause;
  const why =
    returnCode !== undefined
      ? `returned ${returnCode}`
      : cause instanceof NuvolaError
        ? `${cause.code}: ${cause.message}`
        : cause instanceof Error
          ? cause.message
          : String(cause);
  const error = new SkeletonError(
    ErrorCode.SKELETON_STAGE,
    `skeleton stage '${fn}' failed on ${where}: ${why}`,
    {
      function: fn,
      item,
      where,
      ...(returnCode !== undefined ? { returnCode } : {}),
      ...(cause instanceof NuvolaError ? { cause: cause.code } : {}),
    },
    { cause },
  );
  ctx.own.add(error);
  return error;
}

/** One task: `fns` in order on `data` (one invoke, or a chain kept on one worker). */
function call(ctx: Context, fns: readonly string[], data: Uint8Array, where: string, item: number): Promise<Uint8Array> {
  const go = async (): Promise<Uint8Array> => {
    if (ctx.failure !== undefined) throw ctx.failure;
    ctx.signal?.throwIfAborted();
    const nested = fns.map((fn) => ctx.nested.get(fn));
    if (fns.length === 1 || ctx.observe !== undefined || nested.some((n) => n !== undefined)) {
      // Calibration sees each function's own input and output size.
      for (let i = 0; i < fns.length; i++) {
        if (ctx.failure !== undefined) throw ctx.failure;
        const fn = fns[i]!;
        const inner = nested[i];
        if (inner !== undefined) {
          // A registered skeleton runs inside this run: same signal, same first failure, items named as here.
          data = await apply(ctx, inner, data, where, item);
          continue;
        }
        const loop = nodePerformance.eventLoopUtilization();
        const result = await ctx.rt.invoke(fn, data, { signal: ctx.calls.signal }).catch((err: unknown) => {
          throw stageError(ctx, fn, where, item, err);
        });
        if (result.returnCode !== 0) throw stageError(ctx, fn, where, item, undefined, result.returnCode);
        // The main thread's busy time during the call (it waits idle for the worker otherwise).
        const mainMs = Math.min(result.durationMs, nodePerformance.eventLoopUtilization(loop).active);
        ctx.observe?.call(fn, data.byteLength, result.output.byteLength, result.durationMs, mainMs);
        data = result.output;
      }
      return data;
    }
    const result = await ctx.rt.invokeChain([...fns], data, { prewarm: false, signal: ctx.calls.signal }).catch((err: unknown) => {
      const fn = err instanceof NuvolaError && typeof err.details['function'] === 'string' ? err.details['function'] : fns.join(';');
      throw stageError(ctx, fn, where, item, err);
    });
    if (result.returnCode !== 0) {
      throw stageError(ctx, result.stages[result.stages.length - 1]!.function, where, item, undefined, result.returnCode);
    }
    return result.output;
  };
  let run: Promise<Uint8Array>;
  if (ctx.sequential) {
    run = ctx.turn.then(go, go);
  } else {
    run = go();
  }
  // The first failure stops the run at once: siblings still to start see it.
  const settledRun = run.then(
    () => undefined,
    (err: unknown) => fail(ctx, err),
  );
  if (ctx.sequential) ctx.turn = settledRun;
  ctx.inflight.add(run);
  void settledRun.then(() => ctx.inflight.delete(run));
  return run;
}

/** Waits for every promise; rejects with the run's first failure if any failed. */
async function all<T>(ctx: Context, promises: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const values: T[] = [];
  for (const r of results) {
    if (r.status === 'rejected') {
      fail(ctx, r.reason);
      throw ctx.failure!;
    }
    values.push(r.value);
  }
  return values;
}

async function applyMap(ctx: Context, node: MapNode, data: Uint8Array, where: string, item: number): Promise<Uint8Array> {
  const parts = guard(ctx, `partition ${node.partition.name}`, where, item, () =>
    hostStep(ctx, `partition:${node.partition.name}`, data.byteLength, () => node.partition.split(data, ctx.workers)),
  );
  ctx.observe?.shape(`parts:${node.partition.name}`, parts.length);
  const results = parts.map((part, i) => apply(ctx, node.worker, part, `${where}, part ${i}`, item));
  const gather = node.gather;
  if (gather.kind === 'join') {
    const outputs = await all(ctx, results);
    return guard(ctx, `gather ${gather.name}`, where, item, () =>
      hostStep(
        ctx,
        `gather:${gather.name}`,
        outputs.reduce((n, o) => n + o.byteLength, 0),
        () => gather.join(outputs),
      ),
    );
  }
  const r = gather.reduce;
  // Combining results in arrival order needs both laws; otherwise reduce the list in order.
  if (!r.commutative || !r.associative || ctx.sequential) return reduceValues(ctx, r, await all(ctx, results), where, item);
  return reduceAsTheyArrive(ctx, r, results, where, item);
}

/**
 * An associative and commutative reduction that starts as soon as two results are there,
 * while the rest are still running (map–reduce fusion).
 */
function reduceAsTheyArrive(ctx: Context, r: Reduce, results: Promise<Uint8Array>[], where: string, item: number): Promise<Uint8Array> {
  return new Promise<Uint8Array>((resolve, reject) => {
    const ready: { value: Uint8Array; reduced: boolean }[] = [];
    let waiting = results.length;
    let running = 0;
    const pump = (): void => {
      if (ctx.failure !== undefined) {
        if (waiting === 0 && running === 0) reject(ctx.failure);
        return;
      }
      while (ready.length >= 2 && running < ctx.workers) {
        const batch = ready.splice(0);
        running++;
        call(ctx, [r.fn], frame(batch.map((b) => b.value)), where, item).then(
          (value) => {
            running--;
            ready.push({ value, reduced: true });
            pump();
          },
          (err: unknown) => {
            running--;
            fail(ctx, err);
            pump();
          },
        );
      }
      if (waiting > 0 || running > 0) return;
      if (ready.length === 1 && ready[0]!.reduced) resolve(ready[0]!.value);
      else call(ctx, [r.fn], frame(ready.map((b) => b.value)), where, item).then(resolve, reject);
    };
    for (const result of results) {
      result.then(
        (value) => {
          waiting--;
          ready.push({ value, reduced: false });
          pump();
        },
        (err: unknown) => {
          waiting--;
          fail(ctx, err);
          pump();
        },
      );
    }
    if (results.length === 0) pump();
  });
}

/** Reduces `values` with `r`: in one call, or, when associative, in parallel pieces and then their results. */
async function reduceValues(ctx: Context, r: Reduce, values: Uint8Array[], where: string, item: number): Promise<Uint8Array> {
  ctx.observe?.shape(`values:${r.fn}`, values.length);
  const pieces = r.associative ? Math.min(ctx.workers, Math.floor(values.length / 2)) : 1;
  if (pieces <= 1) return call(ctx, [r.fn], frame(values), where, item);
  const partials: Promise<Uint8Array>[] = [];
  for (let i = 0; i < pieces; i++) {
    const piece = values.slice(Math.floor((values.length * i) / pieces), Math.floor((values.length * (i + 1)) / pieces));
    partials.push(call(ctx, [r.fn], frame(piece), where, item));
  }
  return call(ctx, [r.fn], frame(await all(ctx, partials)), where, item);
}

/** FNV-1a of a key's bytes: which reducer gets it. */
function bucketOf(key: Uint8Array, buckets: number): number {
  let h = 0x811c9dc5;
  for (const b of key) h = Math.imul(h ^ b, 0x01000193);
  return (h >>> 0) % buckets;
}

async function applyMapReduce(ctx: Context, node: MapReduce, data: Uint8Array, where: string, item: number): Promise<Uint8Array> {
  const parts = guard(ctx, `partition ${node.partition.name}`, where, item, () =>
    hostStep(ctx, `partition:${node.partition.name}`, data.byteLength, () => node.partition.split(data, ctx.workers)),
  );
  ctx.observe?.shape(`parts:${node.partition.name}`, parts.length);
  const mapped = await all(
    ctx,
    parts.map((part, i) => call(ctx, [node.mapper], part, `${where}, part ${i}`, item)),
  );
  const reducers = node.reducers === 'auto' ? ctx.workers : node.reducers;
  const shuffled = guard(ctx, node.mapper, where, item, () =>
    hostStep(
      ctx,
      `shuffle:${node.mapper}`,
      mapped.reduce((n, o) => n + o.byteLength, 0),
      () => {
        const buckets = Array.from({ length: reducers }, () => new Map<string, { key: Uint8Array; values: Uint8Array[] }>());
        for (const out of mapped) {
          const kv = unframe(out, `the output of mapper '${node.mapper}'`);
          if (kv.length % 2 !== 0) throw new Error(`its output has ${kv.length} parts; a mapper answers key, value, key, value…`);
          for (let i = 0; i < kv.length; i += 2) {
            const key = kv[i]!;
            const bucket = buckets[bucketOf(key, reducers)]!;
            const id = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
            let entry = bucket.get(id);
            if (entry === undefined) bucket.set(id, (entry = { key, values: [] }));
            entry.values.push(kv[i + 1]!);
          }
        }
        return buckets.filter((b) => b.size > 0).map((b) => frame([...b.values()].flatMap((e) => [e.key, frame(e.values)])));
      },
    ),
  );
  const reduced = await all(
    ctx,
    shuffled.map((input, i) => call(ctx, [node.reducer], input, `${where}, bucket ${i}`, item)),
  );
  return guard(ctx, node.reducer, where, item, () =>
    hostStep(
      ctx,
      `merge:${node.reducer}`,
      reduced.reduce((n, o) => n + o.byteLength, 0),
      () => {
        const pairs: [Uint8Array, Uint8Array][] = [];
        for (const out of reduced) {
          const kv = unframe(out, `the output of reducer '${node.reducer}'`);
          if (kv.length % 2 !== 0) throw new Error(`its output has ${kv.length} parts; a reducer answers key, value, key, value…`);
          for (let i = 0; i < kv.length; i += 2) pairs.push([kv[i]!, kv[i + 1]!]);
        }
        pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
        return frame(pairs.flat());
      },
    ),
  );
}

async function solve(
  ctx: Context,
  node: DivideConquer,
  problem: Uint8Array,
  where: string,
  item: number,
  depth: number,
): Promise<Uint8Array> {
  if (guard(ctx, 'isBase', where, item, () => node.isBase(problem))) {
    ctx.observe?.shape(`base:${node.base}`, problem.byteLength);
    return call(ctx, [node.base], problem, where, item);
  }
  if (depth >= node.maxDepth) {
    throw stageError(
      ctx,
      node.divide,
      where,
      item,
      new Error(
        `divide and conquer went ${depth} levels deep without reaching a base case (maxDepth ${node.maxDepth}); check isBase and divide`,
      ),
    );
  }
  const divided = await call(ctx, [node.divide], problem, where, item);
  const subs = guard(ctx, node.divide, where, item, () => unframe(divided, `the output of divide '${node.divide}'`));
  ctx.observe?.shape(`arity:${node.divide}`, subs.length);
  const results = await all(
    ctx,
    subs.map((sub, i) => solve(ctx, node, sub, `${where}.${i}`, item, depth + 1)),
  );
  return call(ctx, [node.combine], frame(results), where, item);
}

/** A bounded FIFO channel between pumps. `abort` drops everything and releases every waiter. */
class Channel<T> {
  private readonly items: T[] = [];
  private readonly pullers: ((value: [T, number] | undefined) => void)[] = [];
  private taken = 0;
  private readonly pushers: { value: T; resolve: () => void }[] = [];
  private closed = false;

  constructor(private readonly capacity: number) {}

  push(value: T): Promise<void> {
    if (this.closed) return Promise.resolve();
    const puller = this.pullers.shift();
    if (puller !== undefined) {
      puller([value, this.taken++]);
      return Promise.resolve();
    }
    if (this.items.length < this.capacity && this.pushers.length === 0) {
      this.items.push(value);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => this.pushers.push({ value, resolve }));
  }

  /** The next value and its arrival number (0, 1, 2… in the order values leave), or undefined once closed and drained. */
  pull(): Promise<[T, number] | undefined> {
    if (this.items.length > 0) {
      const value = this.items.shift()!;
      const pusher = this.pushers.shift();
      if (pusher !== undefined) {
        this.items.push(pusher.value);
        pusher.resolve();
      }
      return Promise.resolve([value, this.taken++]);
    }
    const pusher = this.pushers.shift();
    if (pusher !== undefined) {
      pusher.resolve();
      return Promise.resolve([pusher.value, this.taken++]);
    }
    if (this.closed) return Promise.resolve(undefined);
    return new Promise<[T, number] | undefined>((resolve) => this.pullers.push(resolve));
  }

  /** No more pushes; pulls drain what is queued, then get undefined. */
  close(): void {
    this.closed = true;
    for (const puller of this.pullers.splice(0)) puller(undefined);
  }

  abort(): void {
    this.items.length = 0;
    for (const pusher of this.pushers.splice(0)) pusher.resolve();
    this.close();
  }
}
