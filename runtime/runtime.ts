/**
 * Main thread. The embedding API's facade: the {@link Runtime} class and its public methods.
 * What it stands on: the function registry (function-registry.ts), host handlers
 * (host-handler.ts), the pool, the state store, the cluster link (cluster-host.ts); all built
 * and wired by `createRuntime()` (create-runtime.ts, the composition root).
 *
 * Why it is this long: it is the public surface — every method's checks, its documented
 * errors and its doc comment live here, each delegating in a few lines; split, the API a user
 * reads would be spread over files that add nothing of their own.
 */
import { ErrorCode, InvalidOptionError, LimitError, NuvolaError, RuntimeClosedError } from './errors.js';
import {
  FUNCTION_DEFAULTS,
  resolveChainOptions,
  resolveGroupOptions,
  resolveInvokeOptions,
  type ChainOptions,
  type FunctionOptions,
  type GroupOptions,
  type InvokeOptions,
  type ResolvedFunctionOptions,
  type ResolvedRuntimeOptions,
} from './options.js';
import { cancelledError, type Pool, type RawResult } from './pool.js';
import type { StateStore } from '../state/store.js';
import { HostState } from './host-state.js';
import { toBytes, type InvokeInput } from './input.js';
import { Kernels } from '../kernels/index.js';
import type { Cluster, Outcome } from '../cluster/cluster.js';
import { settle } from '../cluster/outcome.js';
import { checkName, FunctionRegistry, modulePath, unknownFunction } from './function-registry.js';
import { runHandler, type HandlerEntry } from './host-handler.js';
import { joinCluster } from './cluster-host.js';
import { runtimeMetrics } from './metrics.js';
import type { Registry } from 'prom-client';
import type { ChainResult, ClusterView, FunctionInfo, FunctionStats, HostHandler, InvokeResult, RuntimeStats } from './runtime-types.js';

export type {
  InvokeResult,
  ClusterView,
  InvokeInput,
  ChainResult,
  HandlerContext,
  HostHandler,
  FunctionInfo,
  FunctionStats,
  RuntimeStats,
} from './runtime-types.js';

/** @internal Key of the pool accessor used by `nuvola/testing`. */
export const POOL = Symbol('nuvola.pool');

export class Runtime {
  /** The functions registered here: guest modules and host handlers. */
  private readonly registered: FunctionRegistry;
  /** Cluster mode: this host's membership (set by createRuntime once the pool is up). */
  private clusterRef: Cluster | undefined;
  /** Aborted at close: handlers still running stop starting work. */
  private readonly closing = new AbortController();
  private closed = false;

  /** `metrics()`'s registry, made on first use. */
  private registryRef: Registry | undefined;

  /** The state store, for the embedding service: same operations as the guest's `state`. */
  readonly state: HostState;

  /** @internal Use {@link createRuntime}. */
  constructor(
    readonly options: ResolvedRuntimeOptions,
    private readonly pool: Pool,
    private readonly store: StateStore,
    private readonly kernelsRef: { kernels: Kernels | undefined },
    /** The guest modules registered here, with their options (the store reads their stateQuota). */
    private readonly registry: Map<string, ResolvedFunctionOptions>,
  ) {
    this.state = new HostState(store);
    this.registered = new FunctionRegistry(options, pool, registry);
    pool.external = (fn, input, leftMs) => {
      const entry = this.registered.handlers.get(fn);
      // A chain.call to a function this host does not have goes to the cluster, if any.
      if (entry === undefined) {
        return this.clusterRef?.invoke(fn, input, leftMs, undefined, undefined, true).then((o) => settle(o));
      }
      return runHandler(fn, entry.handler, input, Math.min(entry.timeoutMs, leftMs), this.closing.signal);
    };
  }

  /**
   * Compiles `wasm` (bytes, or a path or `file:` URL of a `.wasm` file) once, checks it against the ABI, and
   * makes it callable as `name` on every worker. Rejects with a {@link ModuleError} or
   * {@link RegistryError} and leaves nothing registered when anything is wrong.
   */
  async register(name: string, wasm: Uint8Array | ArrayBuffer | string | URL, options?: FunctionOptions): Promise<void> {
    this.checkOpen();
    checkName(name);
    const bytes = await this.registered.registerModule(name, wasm instanceof URL ? modulePath(wasm) : wasm, options, () =>
      this.checkOpen(),
    );
    if (this.clusterRef !== undefined) {
      // Shared with the cluster: the bytes once by content hash, the name with its options.
      try {
        await this.clusterRef.publish(name, bytes, JSON.parse(JSON.stringify(options ?? {})) as Record<string, unknown>);
      } catch (err) {
        this.registered.unregisterModule(name);
        throw err;
      }
    }
  }

  /**
   * Makes `handler`, a JavaScript function, callable as `name` like a guest: with `invoke`,
   * `invokeChain`, and a guest's `chain.call`. It runs on the main thread, so it should
   * mostly wait (on other invocations, on I/O) rather than compute. A registered skeleton is
   * one (see `nuvola/skeletons`). Not usable as a group's ranks or with `prewarm`.
   */
  registerHandler(name: string, handler: HostHandler, options?: { timeoutMs?: number }): void {
    this.checkOpen();
    checkName(name);
    this.registered.addHandler(name, handler, options);
  }

  /** Removes a function; calls already running finish, later calls get `E_UNKNOWN_FUNCTION`. */
  unregister(name: string): void {
    this.checkOpen();
    if (this.registered.handlers.delete(name)) return;
    if (!this.registry.has(name)) throw unknownFunction(name);
    const hash = this.registered.hashOf(name);
    this.registered.unregisterModule(name);
    // Cluster mode: gone from the registry too, if it still stands for this code (hosts that
    // loaded it keep it until they unregister it). Sent now: a register() after this one
    // reaches Redis after it.
    if (hash !== undefined) {
      this.clusterRef
        ?.unpublish(name, hash)
        .catch((err: NuvolaError) => this.options.logger({ function: 'nuvola', level: 'warn', message: err.message }));
    }
  }

  /**
   * Cluster mode: the cluster's name, this host's id and the live hosts with their load.
   * Rejects with E_INVALID_OPTION outside cluster mode and E_CLUSTER_UNAVAILABLE without Redis.
   */
  async cluster(): Promise<ClusterView> {
    this.checkOpen();
    const cluster = this.clusterRef;
    if (cluster === undefined) {
      throw new InvalidOptionError(
        ErrorCode.INVALID_OPTION,
        'not in cluster mode: pass { redis, cluster: { name, secret } } to createRuntime()',
        {
          path: 'options.cluster',
        },
      );
    }
    return { name: cluster.settings.name, self: cluster.hostId, hosts: await cluster.hosts(), rejected: cluster.rejected };
  }

  /** Names of the registered functions (guest modules and host handlers). */
  functions(): string[] {
    return this.registered.names();
  }

  /** What kind of function `name` is and the options it was registered with. */
  describe(name: string): FunctionInfo {
    return this.registered.describe(name);
  }

  /**
   * Runs `name` once with `input` on some worker. Resolves with its output and return code
   * (a non-zero return code is a result, not an error); rejects with a coded
   * {@link NuvolaError} when the call could not complete.
   */
  invoke(name: string, input?: InvokeInput, options?: InvokeOptions): Promise<InvokeResult> {
    // Not `async`: one promise fewer per call on the hot path; checks still reject, not throw.
    let bytes: Uint8Array;
    let timeoutMs: number;
    let trace = false;
    let idempotencyKey: string | undefined;
    let stateKey: string | undefined;
    let signal: AbortSignal | undefined;
    const cluster = this.clusterRef;
    try {
      this.checkOpen();
      const fnOptions = this.registry.get(name);
      if (fnOptions === undefined) {
        const entry = this.registered.handlers.get(name);
        if (entry !== undefined) return this.invokeHandler(name, entry, input, options);
        if (cluster === undefined) throw unknownFunction(name);
      }
      timeoutMs = fnOptions?.timeoutMs ?? FUNCTION_DEFAULTS.timeoutMs;
      if (options !== undefined) ({ timeoutMs, trace, idempotencyKey, stateKey, signal } = resolveInvokeOptions(options, { timeoutMs }));
      if (idempotencyKey !== undefined && cluster === undefined) {
        throw new InvalidOptionError(
          ErrorCode.INVALID_OPTION,
          'options.idempotencyKey needs cluster mode (createRuntime({ redis, cluster }))',
          {
            path: 'options.idempotencyKey',
          },
        );
      }
      bytes = toBytes(input);
      this.checkInputSize(name, bytes);
      const maxQueue = this.options.maxQueue;
      if (maxQueue !== Infinity && this.pool.queued() >= maxQueue) {
        throw new LimitError(
          ErrorCode.QUEUE_FULL,
          `function '${name}' was refused: ${maxQueue} calls already wait to start (maxQueue); retry later, add workers, or raise maxQueue in createRuntime()`,
          { function: name, maxQueue },
        );
      }
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const start = performance.now();
    if (cluster !== undefined) {
      // Here when this host has the function and room (and holds or is home to the state key);
      // else (or with an idempotency key) through the cluster.
      if (this.registry.has(name) && idempotencyKey === undefined && cluster.runsHere(stateKey)) {
        return cluster
          .track(this.pool.invoke(name, bytes, timeoutMs, trace || signal ? { trace, signal } : undefined))
          .then((raw) => invokeResult(raw, performance.now() - start, cluster.hostId));
      }
      // Not registered here and no timeout given: the function's own, from the cluster's registry.
      const own = !this.registry.has(name) && (options as InvokeOptions | undefined)?.timeoutMs === undefined;
      return abandonOnAbort(
        cluster.invoke(name, bytes, own ? undefined : timeoutMs, idempotencyKey, stateKey).then((outcome) => clusterResult(outcome, start)),
        name,
        signal,
      );
    }
    return this.pool
      .invoke(name, bytes, timeoutMs, trace || signal ? { trace, signal } : undefined)
      .then((raw) => invokeResult(raw, performance.now() - start));
  }

  private async invokeHandler(
    name: string,
    entry: HandlerEntry,
    input: InvokeInput,
    options: InvokeOptions | undefined,
  ): Promise<InvokeResult> {
    const resolved = options === undefined ? undefined : resolveInvokeOptions(options, entry);
    const timeoutMs = resolved?.timeoutMs ?? entry.timeoutMs;
    const bytes = toBytes(input);
    this.checkInputSize(name, bytes);
    const start = performance.now();
    const raw = await abandonOnAbort(runHandler(name, entry.handler, bytes, timeoutMs, this.closing.signal), name, resolved?.signal);
    return invokeResult(raw, performance.now() - start);
  }

  /**
   * Runs `size` instances of `name` together as ranks 0..size-1 of one group, each with
   * `input`; they talk with the guest's `comm` API. Resolves with each rank's result, in rank
   * order. The first rank that fails ends the group: ranks waiting for a message fail with
   * `E_COMM_ABORTED`, and the promise rejects with the first failure (`details.rank`). Every
   * rank holds an instance while the group runs, so `size` may not exceed `maxInstances`
   * (`E_INSTANCE_LIMIT`, checked before anything starts).
   */
  async invokeGroup(name: string, size: number, input?: InvokeInput, options?: GroupOptions): Promise<InvokeResult[]> {
    this.checkOpen();
    const fnOptions = this.registry.get(name);
    if (fnOptions === undefined && this.registered.handlers.has(name)) {
      throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `'${name}' is a host handler; only guest modules can be a group's ranks`, {
        function: name,
        path: 'name',
      });
    }
    // Over hosts, a function this host lacks runs from the cluster's registry.
    const fromCluster = fnOptions === undefined && options?.placement === 'hosts' && this.clusterRef !== undefined;
    if (fnOptions === undefined && !fromCluster) throw unknownFunction(name);
    if (!Number.isInteger(size) || size < 1) {
      throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `invokeGroup size must be a positive integer, got ${String(size)}`, {
        path: 'size',
      });
    }
    if (size > this.options.maxInstances) {
      throw new LimitError(
        ErrorCode.INSTANCE_LIMIT,
        `a group of ${size} ranks of '${name}' needs ${size} instances at once, above maxInstances=${this.options.maxInstances}; use fewer ranks or raise maxInstances`,
        { function: name, size, maxInstances: this.options.maxInstances },
      );
    }
    const resolved = resolveGroupOptions(options);
    const placement = resolved.placement;
    // Undefined (a function from the cluster, no timeout given): the one it was registered with.
    const timeoutMs = resolved.timeoutMs ?? fnOptions?.timeoutMs;
    const bytes = toBytes(input);
    this.checkInputSize(name, bytes);
    const start = performance.now();
    if (placement === 'hosts') {
      const cluster = this.clusterRef;
      if (cluster === undefined) {
        throw new InvalidOptionError(ErrorCode.INVALID_OPTION, "placement 'hosts' needs cluster mode (createRuntime({ redis, cluster }))", {
          path: 'options.placement',
        });
      }
      const outcomes = await cluster.invokeGroup(name, size, bytes, timeoutMs);
      // The rank that failed first, not one stopped because of it.
      const errors = outcomes.filter((o) => 'error' in o);
      const failed = errors.find((o) => o.error.code !== ErrorCode.COMM_ABORTED) ?? errors[0];
      if (failed !== undefined) settle(failed);
      return outcomes.map((o) => clusterResult(o, start));
    }
    const raws = await this.pool.invokeGroup(name, size, bytes, timeoutMs!, placement);
    const durationMs = performance.now() - start;
    return raws.map((raw) => invokeResult(raw, durationMs));
  }

  /**
   * Restores `instances` idle instances (default 1) of each named function, spread over the
   * running workers, in time they have no call to run — for calls the caller knows are coming.
   * Idle instances still expire after `idleTimeoutMs`. Unknown names are an error.
   */
  prewarm(names: string | string[], options?: { instances?: number }): void {
    this.checkOpen();
    const list = typeof names === 'string' ? [names] : names;
    for (const name of list) if (!this.registered.has(name)) throw unknownFunction(name);
    const count = options?.instances ?? 1;
    if (!Number.isInteger(count) || count < 1 || count > this.options.maxIdleInstances) {
      throw new InvalidOptionError(
        ErrorCode.INVALID_OPTION,
        `option instances must be an integer from 1 to maxIdleInstances=${this.options.maxIdleInstances}, got ${String(count)}`,
        { path: 'options.instances' },
      );
    }
    // Host handlers have no instances to warm.
    for (const name of list) if (this.registry.has(name)) this.pool.prewarm(name, count);
  }

  /**
   * Runs `names` in order, each stage's output the next one's input, and resolves with the
   * last stage's result. Stops at the first stage that returns a non-zero code (its result is
   * the chain's). Because the runtime sees the whole chain, it warms the later stages'
   * instances on the worker that runs the first, in the gaps between stages, so they need not
   * start cold (`prewarm: false` turns that off). A stage that fails rejects the chain.
   */
  async invokeChain(names: string[], input?: InvokeInput, options?: ChainOptions): Promise<ChainResult> {
    this.checkOpen();
    if (!Array.isArray(names) || names.length === 0) {
      throw new InvalidOptionError(ErrorCode.INVALID_OPTION, 'invokeChain needs a non-empty array of function names', { path: 'names' });
    }
    for (const name of names) if (!this.registered.has(name)) throw unknownFunction(name);
    const chain = resolveChainOptions(options);
    const invokeOptions =
      chain.timeoutMs === undefined && chain.signal === undefined ? undefined : { timeoutMs: chain.timeoutMs, signal: chain.signal };
    if (chain.prewarm) this.pool.prewarmChain(names.filter((name) => this.registry.has(name)));
    const start = performance.now();
    const stages: ChainResult['stages'] = [];
    let data: InvokeInput = input;
    let last: InvokeResult | undefined;
    for (const name of names) {
      last = await this.invoke(name, data, invokeOptions);
      stages.push({
        function: name,
        returnCode: last.returnCode,
        cold: last.cold,
        worker: last.worker,
        workerMs: last.workerMs,
        durationMs: last.durationMs,
        ...(last.usage ? { usage: last.usage } : {}),
      });
      if (last.returnCode !== 0) break;
      data = last.output;
    }
    return { ...last!, durationMs: performance.now() - start, stages };
  }

  stats(): RuntimeStats {
    const concurrency = this.pool.concurrency();
    const usage = this.store.usage();
    const byFunction: Record<string, FunctionStats> = {};
    for (const [name, options] of this.registry) {
      const calls = concurrency.get(name) ?? { running: 0, waiting: 0, maxConcurrency: options.maxConcurrency };
      const state = usage.get(name) ?? { bytes: 0, keys: 0 };
      byFunction[name] = {
        ...calls,
        ...this.pool.meters.stats(name),
        stateBytes: state.bytes,
        stateKeys: state.keys,
        stateQuota: { ...options.stateQuota },
      };
    }
    const { maxQueuedMessageBytes, maxChainedOutputBytes, maxInstances } = this.options;
    const stats: RuntimeStats = {
      ...this.pool.stats(),
      functions: this.registry.size + this.registered.handlers.size,
      byFunction,
      limits: { maxQueuedMessageBytes, maxChainedOutputBytes, maxInstances },
      energy: this.pool.energy.stats(),
    };
    if (this.kernelsRef.kernels !== undefined) stats.kernels = this.kernelsRef.kernels.stats();
    return stats;
  }

  /**
   * The runtime's figures as a prom-client `Registry` (the same one each time), read from
   * `stats()` when scraped: serve `await rt.metrics().metrics()`, or merge it with your own
   * (`Registry.merge([rt.metrics(), mine])`). The metrics: docs/guides/serving.md.
   */
  metrics(): Registry {
    return (this.registryRef ??= runtimeMetrics({
      stats: () => this.stats(),
      latencyHistogram: (fn, boundsMs) => this.pool.meters.latencyHistogram(fn, boundsMs),
    }));
  }

  /**
   * The GPU kernels guests reach with `kernels.*`, for the embedding service: the same
   * library, and `registerKernel(name, { wgsl, inputs, params?, cpu? })` for kernels guests
   * run by name. Created on first use (one device per process, on its own thread).
   */
  get kernels(): Kernels {
    this.checkOpen();
    return (this.kernelsRef.kernels ??= new Kernels(this.options.kernels));
  }

  /** `await using rt = await createRuntime()`: closes the runtime when the scope ends. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** Stops every worker. Calls still running reject with `E_CLOSED`; later calls too. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort(new RuntimeClosedError(ErrorCode.CLOSED, 'the runtime is closed'));
    await this.clusterRef?.close();
    await this.pool.close();
    await this.kernelsRef.kernels?.close();
    await this.store.close();
  }

  /** @internal Joins the cluster of `options.cluster` (createRuntime). */
  async joinCluster(): Promise<void> {
    this.clusterRef = await joinCluster(this.options, this.registered, this.store, this.pool, () => this.checkOpen());
  }

  /** @internal The pool, for the hooks in `nuvola/testing`. */
  get [POOL](): Pool {
    return this.pool;
  }

  private checkInputSize(name: string, bytes: Uint8Array): void {
    if (bytes.byteLength > this.options.maxInputBytes) {
      throw new LimitError(
        ErrorCode.INPUT_TOO_LARGE,
        `input to '${name}' is ${bytes.byteLength} bytes, above maxInputBytes=${this.options.maxInputBytes}; raise it in createRuntime() or pass a smaller input`,
        { function: name, bytes: bytes.byteLength, maxInputBytes: this.options.maxInputBytes },
      );
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new RuntimeClosedError(ErrorCode.CLOSED, 'the runtime is closed; create a new one with createRuntime()');
  }
}

/** A call's outcome from the cluster as `invoke` resolves it (or the error it rejects with). */
function clusterResult(outcome: Outcome, start: number): InvokeResult {
  return invokeResult(settle(outcome), performance.now() - start, 'host' in outcome ? outcome.host : undefined);
}

/**
 * A call's result as `invoke` resolves it, from the pool's raw result or, for a call that ran
 * on no worker here (a host handler, another host), just its output and code.
 */
function invokeResult(raw: Pick<RawResult, 'output' | 'returnCode'> & Partial<RawResult>, durationMs: number, host?: string): InvokeResult {
  // Assigned, not spread from conditional literals: this runs for every result.
  const result: InvokeResult = {
    output: raw.output,
    returnCode: raw.returnCode,
    cold: raw.cold ?? false,
    worker: raw.worker ?? -1,
    workerMs: raw.workerMs ?? 0,
    durationMs,
  };
  if (raw.usage !== undefined) result.usage = raw.usage;
  if (host !== undefined) result.host = host;
  if (raw.calls) result.calls = raw.calls;
  return result;
}

/**
 * A call this runtime cannot stop (a host handler, a call run by another host), abandoned when
 * `signal` aborts: the promise rejects with E_CANCELLED; what runs goes on.
 */
function abandonOnAbort<T>(call: Promise<T>, fn: string, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return call;
  if (signal.aborted) return Promise.reject(cancelledError(fn, signal.reason, false));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(cancelledError(fn, signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    call.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err as Error);
      },
    );
  });
}
