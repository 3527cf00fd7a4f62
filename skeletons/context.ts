/**
 * Main thread. The state of one skeleton run, shared by the interpreter and the stream pumps:
 * its options, its first failure (and what that failure stops: channels, waiting sources, and
 * the run's calls in flight through its AbortController), and the errors a stage makes.
 */
import { setMaxListeners } from 'node:events';
import { ErrorCode, NuvolaError, RegistryError, SkeletonError, type Runtime } from '../runtime/index.js';
import type { Channel } from './channel.js';
import { registeredSkeleton } from './registry.js';
import { functionsOf, type Skeleton } from './tree.js';

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

export interface Context {
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

export interface Item {
  index: number;
  data: Uint8Array;
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

export function context(rt: Runtime, node: Skeleton, options: RunOptions): Context {
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

/** Waits for every call in flight, then answers the first failure. */
export async function settled(ctx: Context): Promise<Error> {
  while (ctx.inflight.size > 0) await Promise.allSettled([...ctx.inflight]);
  return ctx.failure ?? new Error('no failure');
}

export function fail(ctx: Context, err: unknown): void {
  if (ctx.failure !== undefined) return;
  ctx.failure = err instanceof Error ? err : new Error(String(err));
  for (const ch of ctx.channels) ch.abort();
  ctx.calls.abort(ctx.failure);
  ctx.stop();
}

/** Makes an abort of the run's signal fail the run at once; returns the undo. */
export function watchSignal(ctx: Context): () => void {
  const signal = ctx.signal;
  if (signal === undefined) return () => {};
  const onAbort = (): void => fail(ctx, signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}

export function hostStep<T>(ctx: Context, step: string, bytes: number, fn: () => T): T {
  const t = performance.now();
  const result = fn();
  ctx.observe?.host(step, bytes, performance.now() - t);
  return result;
}

/** Runs a user predicate or partition; what it throws becomes a stage error. */
export function guard<T>(ctx: Context, what: string, where: string, item: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const error = stageError(ctx, what, where, item, err);
    fail(ctx, error);
    throw error;
  }
}

export function stageError(ctx: Context, fn: string, where: string, item: number, cause: unknown, returnCode?: number): SkeletonError {
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
