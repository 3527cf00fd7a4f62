/**
 * Main thread. The interpreter: runs a skeleton tree on one item, through the runtime's public
 * API only — `invoke` for a single function, `invokeChain` for a sequential composition, and
 * host-side partitions, gathers and shuffles between them. Every call is made with the run's
 * signal, so the run's first failure cancels the calls still in flight.
 */
import { performance as nodePerformance } from 'node:perf_hooks';
import { NuvolaError } from '../runtime/index.js';
import { fail, guard, hostStep, stageError, type Context } from './context.js';
import { frame, unframe } from './frames.js';
import { functionsOf, type DivideConquer, type Iterate, type MapNode, type MapReduce, type Reduce, type Skeleton } from './tree.js';

/** Runs `node` on one item. `where` names the item (and part) in errors. */
export async function apply(ctx: Context, node: Skeleton, data: Uint8Array, where: string, item: number): Promise<Uint8Array> {
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

/** One task: `fns` in order on `data` (one invoke, or a chain kept on one worker). */
export function call(ctx: Context, fns: readonly string[], data: Uint8Array, where: string, item: number): Promise<Uint8Array> {
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
