/**
 * Main thread. The embedding API: `createRuntime()` and the {@link Runtime} it returns.
 *
 * Why it is this long: the public Runtime class (register, invoke, groups, chains, handlers,
 * state, cluster wiring) is one object; issue 17 moves cluster wiring and handlers out.
 */
import { fileURLToPath } from 'node:url';
import {
  ErrorCode,
  HandlerError,
  InvalidOptionError,
  LimitError,
  ModuleError,
  NuvolaError,
  RegistryError,
  RuntimeClosedError,
  TimeoutError,
} from './errors.js';
import { checkModule, isComponent, type CheckedModule } from './module-check.js';
import { prepareComponent } from './component.js';
import { moduleTooLarge, readModuleFile } from './module-file.js';
import type { ComponentCode, FunctionSpec } from './protocol.js';
import {
  FUNCTION_DEFAULTS,
  FUNCTION_NAME,
  resolveChainOptions,
  resolveFunctionOptions,
  resolveGroupOptions,
  resolveInvokeOptions,
  resolveRuntimeOptions,
  type ChainOptions,
  type FunctionOptions,
  type GroupOptions,
  type InvokeOptions,
  type ResolvedFunctionOptions,
  type ResolvedRuntimeOptions,
  type RuntimeOptions,
} from './options.js';
import { cancelledError, Pool, type CallRecord, type PoolStats, type RawResult } from './pool.js';
import type { CallStats, EnergyStats, Usage } from './metering.js';
import type { ConcurrencyStats } from './admission.js';
import type { GlobalTier } from '../state/global-tier.js';
import { MemoryTier } from '../state/memory-tier.js';
import { RedisTier } from '../state/redis-tier.js';
import { StateStore } from '../state/store.js';
import { HostState } from './host-state.js';
import { stateService } from './capabilities/state/service.js';
import { kernelsService } from './capabilities/kernels/service.js';
import { toBytes, type InvokeInput } from './input.js';
import { Kernels, type KernelsStats } from '../kernels/index.js';
import type { Cluster, HostInfo, Outcome, Rejected } from '../cluster/cluster.js';
import { moduleHash, settle } from '../cluster/outcome.js';

/** What `invoke` resolves to. */
export interface InvokeResult {
  /** The bytes the guest passed to `output`/`outputString` (empty when it set none). */
  output: Uint8Array;
  /** The value `main` returned. */
  returnCode: number;
  /** Whether the call had to instantiate a fresh instance (no warm one was idle). */
  cold: boolean;
  /** Index of the worker that ran it. */
  worker: number;
  /** Wall time from `invoke` to the result, in milliseconds. */
  durationMs: number;
  /**
   * Of that, the time the call kept its worker busy: taking or restoring an instance, running
   * `main` (time suspended included), reading the output, resetting the instance. The rest is
   * queueing and moving the input and output between threads. 0 for host handlers.
   */
  workerMs: number;
  /**
   * What the call used: wall and CPU time, peak memory, bytes in and out, state and kernel use,
   * memory-seconds, energy where measurable, fuel (see {@link Usage} and docs/guides/metering.md).
   * On every call a worker of this runtime ran (the error of a call that started carries it in
   * `details.usage`); absent for host handlers and calls another cluster host ran.
   */
  usage?: Usage;
  /** With `{ trace: true }`: this call and every call it made with chain.call, transitively. */
  calls?: CallRecord[];
  /** Cluster mode: the id of the host that ran the call. */
  host?: string;
}

/** What `rt.cluster()` resolves to. */
export interface ClusterView {
  name: string;
  /** This host's id. */
  self: string;
  /** The live hosts (this one included), as their last heartbeats described them. */
  hosts: HostInfo[];
  /**
   * What this host dropped since it joined because it failed verification (no valid MAC under
   * the cluster's secret, bytes that do not match their hash), by kind. Non-zero: something
   * without the secret writes to the cluster's Redis, or a host has another secret.
   */
  rejected: Rejected;
}

export type { InvokeInput } from './input.js';

/** What `invokeChain` resolves to: the last stage's result, and every stage's. */
export interface ChainResult extends InvokeResult {
  /** Each stage that ran, in order (a chain stops at the first non-zero return code). */
  stages: (Omit<InvokeResult, 'output'> & { function: string })[];
}

/** What a host handler gets besides its input. */
export interface HandlerContext {
  /** The name it was invoked as. */
  function: string;
  /** The call's time limit; the call rejects with `E_TIMEOUT` when it passes. */
  timeoutMs: number;
  /** Aborted when the call timed out or the runtime closed: stop starting new work then. */
  signal: AbortSignal;
}

/**
 * A function written in JavaScript that runs on the main thread, between guest calls — a
 * registered skeleton is one. Resolves with the output (return code 0) or with both.
 */
export type HostHandler = (input: Uint8Array, context: HandlerContext) => Promise<Uint8Array | { output: Uint8Array; returnCode: number }>;

/** What `describe(name)` says of a registered function. */
export interface FunctionInfo {
  name: string;
  /** `'wasm'`: a guest module; `'handler'`: a host handler (`registerHandler`). */
  kind: 'wasm' | 'handler';
  timeoutMs: number;
  /** For guest modules: whether an instance is reset after each call or keeps its state. */
  reuse?: 'reset' | 'keep';
  /** For guest modules: the interface it speaks (`'nuvola'`, `'wasi'` or `'component'`). */
  abi?: 'nuvola' | 'wasi' | 'component';
  /** For guest modules: the state keys it may touch (`undefined`: any). */
  stateKeys?: readonly string[];
  /** For guest modules: the functions it may call with `chain.call` (`undefined`: any). */
  callees?: readonly string[];
  /** For host handlers: the function registered (so a library can recognise its own). */
  handler?: HostHandler;
}

/** One function in `stats().byFunction`. */
export interface FunctionStats extends ConcurrencyStats, CallStats {
  /** Bytes of the local state tier charged to it: room of the keys it last created or grew, plus what it appended here. */
  stateBytes: number;
  /** Local keys charged to it. */
  stateKeys: number;
  stateQuota: { bytes: number; keys: number };
}

/** What `stats()` reports. */
export interface RuntimeStats extends PoolStats {
  functions: number;
  /** Per registered guest module: its calls under `maxConcurrency` and its use of the local state tier against `stateQuota`. */
  byFunction: Record<string, FunctionStats>;
  /** The runtime-wide caps on what guests make the host hold. */
  limits: { maxQueuedMessageBytes: number; maxChainedOutputBytes: number; maxInstances: number };
  /** The GPU kernels: which path they take, calls per path and per function; absent before first use. */
  kernels?: KernelsStats;
  /** Whether calls get `usage.energyJoules` (RAPL counters readable), why not, and the joules attributed so far. */
  energy: EnergyStats;
}

/** @internal Key of the pool accessor used by `nuvola/testing`. */
export const POOL = Symbol('nuvola.pool');

export class Runtime {
  private readonly handlers = new Map<string, { handler: HostHandler; timeoutMs: number }>();
  private readonly reserved = new Set<string>();
  /** Cluster mode: the content hash of each registered module's bytes. */
  private readonly hashes = new Map<string, string>();
  /** Cluster mode: names registered here from the cluster's registry (not by register()). */
  private readonly fetched = new Set<string>();
  /** Cluster mode: this host's membership (set by createRuntime once the pool is up). */
  private clusterRef: Cluster | undefined;
  /** Aborted at close: handlers still running stop starting work. */
  private readonly closing = new AbortController();
  private closed = false;

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
    pool.external = (fn, input, leftMs) => {
      const entry = this.handlers.get(fn);
      // A chain.call to a function this host does not have goes to the cluster, if any.
      if (entry === undefined) {
        return this.clusterRef?.invoke(fn, input, leftMs, undefined, undefined, true).then((o) => settle(o));
      }
      return this.runHandler(fn, entry.handler, input, Math.min(entry.timeoutMs, leftMs));
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
    const bytes = await this.registerHere(name, wasm instanceof URL ? modulePath(wasm) : wasm, options);
    if (this.clusterRef !== undefined) {
      // Shared with the cluster: the bytes once by content hash, the name with its options.
      try {
        await this.clusterRef.publish(name, bytes, JSON.parse(JSON.stringify(options ?? {})) as Record<string, unknown>);
      } catch (err) {
        this.unregisterHere(name);
        throw err;
      }
    }
  }

  /** Registers on this host only; returns the module's bytes. */
  private async registerHere(name: string, wasm: Uint8Array | ArrayBuffer | string, options?: FunctionOptions): Promise<Uint8Array> {
    const fnOptions = resolveFunctionOptions(options, this.options.maxInstances);
    if (this.registry.has(name) || this.handlers.has(name) || this.reserved.has(name)) {
      throw new RegistryError(
        ErrorCode.ALREADY_REGISTERED,
        `a function named '${name}' is already registered; unregister() it first or pick another name`,
        {
          function: name,
        },
      );
    }
    this.reserved.add(name);
    try {
      const bytes = await this.loadBytes(name, wasm);
      const component = isComponent(bytes);
      if (component !== (fnOptions.abi === 'component') && fnOptions.abi !== 'auto') {
        throw new ModuleError(
          ErrorCode.INVALID_MODULE,
          component
            ? `function '${name}' is a WebAssembly component, registered with abi: '${fnOptions.abi}'; register it with abi: 'component' (or leave abi out)`
            : `function '${name}' is registered with abi: 'component', but its bytes are a core WebAssembly module, not a component`,
          { function: name, abi: fnOptions.abi },
        );
      }
      let checked: CheckedModule;
      let code: ComponentCode | undefined;
      if (component) {
        ({ checked, code } = await prepareComponent(name, bytes, fnOptions.memoryLimitPages, this.options.componentCacheDir, {
          fuel: fnOptions.fuel !== undefined,
        }));
      } else {
        checked = await checkModule(name, bytes, fnOptions.memoryLimitPages, fnOptions.abi === 'component' ? 'auto' : fnOptions.abi, {
          fuel: fnOptions.fuel !== undefined,
        });
      }
      checkEnforceable(name, fnOptions, checked);
      if (checked.abi === 'wasi' && fnOptions.reuse === 'keep') {
        throw new InvalidOptionError(
          ErrorCode.INVALID_OPTION,
          `function '${name}' is a WASI command, which runs once per instance: reuse: 'keep' does not apply; leave reuse out`,
          { path: 'options.reuse' },
        );
      }
      this.checkOpen();
      const spec: FunctionSpec = {
        name,
        module: checked.module,
        layout: checked.layout,
        reuse: fnOptions.reuse,
        suspends: checked.suspends,
        memoryLimitPages: fnOptions.memoryLimitPages,
        stateKeys: fnOptions.stateKeys,
        callees: fnOptions.callees,
        timeoutMs: fnOptions.timeoutMs,
        abi: checked.abi,
        wasi: fnOptions.wasi,
        concurrency: { limit: fnOptions.maxConcurrency, running: new SharedArrayBuffer(4) },
      };
      if (code !== undefined) spec.component = code;
      if (fnOptions.cpuLimitMs !== undefined) spec.cpuLimitMs = fnOptions.cpuLimitMs;
      if (fnOptions.fuel !== undefined) spec.fuel = fnOptions.fuel;
      if (checked.sources !== undefined) spec.sources = checked.sources;
      await this.pool.register(spec, checked.segments, fnOptions.timeoutMs);
      fnOptions.abi = checked.abi;
      if (checked.layout.resetNote !== undefined && fnOptions.reuse === 'reset') {
        this.options.logger({ function: 'nuvola', level: 'warn', message: `function '${name}': ${checked.layout.resetNote}` });
      }
      this.registry.set(name, fnOptions);
      if (this.options.cluster !== undefined) this.hashes.set(name, moduleHash(bytes));
      return bytes;
    } finally {
      this.reserved.delete(name);
    }
  }

  private async loadBytes(name: string, wasm: Uint8Array | ArrayBuffer | string): Promise<Uint8Array> {
    let bytes: Uint8Array;
    if (typeof wasm === 'string') {
      bytes = await readModuleFile(name, wasm, this.options.maxModuleBytes);
    } else if (wasm instanceof Uint8Array) {
      bytes = wasm;
    } else if (wasm instanceof ArrayBuffer) {
      bytes = new Uint8Array(wasm);
    } else {
      throw new InvalidOptionError(
        ErrorCode.INVALID_OPTION,
        `register('${name}', wasm): wasm must be a Uint8Array, an ArrayBuffer or a file path`,
        {
          path: 'wasm',
        },
      );
    }
    if (bytes.byteLength > this.options.maxModuleBytes) throw moduleTooLarge(name, bytes.byteLength, this.options.maxModuleBytes);
    return bytes;
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
    if (typeof handler !== 'function') {
      throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `registerHandler('${name}', handler): handler must be a function`, {
        path: 'handler',
      });
    }
    if (
      options !== undefined &&
      (options === null || typeof options !== 'object' || Object.keys(options).some((key) => key !== 'timeoutMs'))
    ) {
      throw new InvalidOptionError(
        ErrorCode.INVALID_OPTION,
        `registerHandler('${name}', handler, options): options may only be { timeoutMs }`,
        {
          path: 'options',
        },
      );
    }
    const { timeoutMs } = resolveFunctionOptions(options === undefined ? {} : { timeoutMs: options.timeoutMs });
    if (this.registry.has(name) || this.handlers.has(name) || this.reserved.has(name)) {
      throw new RegistryError(
        ErrorCode.ALREADY_REGISTERED,
        `a function named '${name}' is already registered; unregister() it first or pick another name`,
        { function: name },
      );
    }
    this.handlers.set(name, { handler, timeoutMs });
  }

  /** Removes a function; calls already running finish, later calls get `E_UNKNOWN_FUNCTION`. */
  unregister(name: string): void {
    this.checkOpen();
    if (this.handlers.delete(name)) return;
    if (!this.registry.has(name)) throw unknownFunction(name);
    const hash = this.hashes.get(name);
    this.unregisterHere(name);
    // Cluster mode: gone from the registry too, if it still stands for this code (hosts that
    // loaded it keep it until they unregister it). Sent now: a register() after this one
    // reaches Redis after it.
    if (hash !== undefined) {
      this.clusterRef
        ?.unpublish(name, hash)
        .catch((err: NuvolaError) => this.options.logger({ function: 'nuvola', level: 'warn', message: err.message }));
    }
  }

  private unregisterHere(name: string): void {
    this.registry.delete(name);
    this.hashes.delete(name);
    this.fetched.delete(name);
    this.pool.unregister(name);
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
    return [...this.registry.keys(), ...this.handlers.keys()];
  }

  /** What kind of function `name` is and the options it was registered with. */
  describe(name: string): FunctionInfo {
    const handler = this.handlers.get(name);
    if (handler !== undefined) return { name, kind: 'handler', timeoutMs: handler.timeoutMs, handler: handler.handler };
    const fn = this.registry.get(name);
    if (fn === undefined) throw unknownFunction(name);
    return {
      name,
      kind: 'wasm',
      timeoutMs: fn.timeoutMs,
      reuse: fn.reuse,
      abi: fn.abi === 'auto' ? 'nuvola' : fn.abi,
      ...(fn.stateKeys === undefined ? {} : { stateKeys: [...fn.stateKeys] }),
      ...(fn.callees === undefined ? {} : { callees: [...fn.callees] }),
    };
  }

  private runHandler(
    name: string,
    handler: HostHandler,
    input: Uint8Array,
    timeoutMs: number,
  ): Promise<{ output: Uint8Array; returnCode: number }> {
    if (this.closing.signal.aborted) {
      return Promise.reject(
        new RuntimeClosedError(ErrorCode.CLOSED, `the runtime is closed; '${name}' was not started`, { function: name }),
      );
    }
    const controller = new AbortController();
    let rejectClosed!: (err: Error) => void;
    // close() ends the call at once with E_CLOSED, whether or not the handler heeds its signal.
    const closed = new Promise<never>((_, reject) => (rejectClosed = reject));
    const onClose = (): void => {
      controller.abort(this.closing.signal.reason);
      rejectClosed(new RuntimeClosedError(ErrorCode.CLOSED, `the runtime closed while '${name}' was running`, { function: name }));
    };
    this.closing.signal.addEventListener('abort', onClose, { once: true });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new TimeoutError(
          ErrorCode.TIMEOUT,
          `'${name}' ran longer than its timeoutMs=${timeoutMs}; raise timeoutMs or give it less work`,
          {
            function: name,
            timeoutMs,
          },
        );
        controller.abort(err);
        reject(err);
      }, timeoutMs);
    });
    const run = (async () => {
      try {
        const result = await handler(input, { function: name, timeoutMs, signal: controller.signal });
        if (result instanceof Uint8Array) return { output: result, returnCode: 0 };
        if (
          result !== null &&
          typeof result === 'object' &&
          result.output instanceof Uint8Array &&
          (result.returnCode | 0) === result.returnCode
        ) {
          return { output: result.output, returnCode: result.returnCode };
        }
        throw new HandlerError(
          ErrorCode.HANDLER_FAILED,
          `handler '${name}' resolved with something other than a Uint8Array or { output, returnCode } (an i32)`,
          { function: name },
        );
      } catch (err) {
        if (err instanceof NuvolaError) throw err;
        throw new HandlerError(
          ErrorCode.HANDLER_FAILED,
          `handler '${name}' failed: ${err instanceof Error ? err.message : String(err)}`,
          { function: name },
          { cause: err },
        );
      }
    })();
    return Promise.race([run, expired, closed]).finally(() => {
      clearTimeout(timer);
      this.closing.signal.removeEventListener('abort', onClose);
    });
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
        const entry = this.handlers.get(name);
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
    entry: { handler: HostHandler; timeoutMs: number },
    input: InvokeInput,
    options: InvokeOptions | undefined,
  ): Promise<InvokeResult> {
    const resolved = options === undefined ? undefined : resolveInvokeOptions(options, entry);
    const timeoutMs = resolved?.timeoutMs ?? entry.timeoutMs;
    const bytes = toBytes(input);
    this.checkInputSize(name, bytes);
    const start = performance.now();
    const raw = await abandonOnAbort(this.runHandler(name, entry.handler, bytes, timeoutMs), name, resolved?.signal);
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
    if (fnOptions === undefined && this.handlers.has(name)) {
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
    for (const name of list) if (!this.registry.has(name) && !this.handlers.has(name)) throw unknownFunction(name);
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
    for (const name of names) if (!this.registry.has(name) && !this.handlers.has(name)) throw unknownFunction(name);
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
      functions: this.registry.size + this.handlers.size,
      byFunction,
      limits: { maxQueuedMessageBytes, maxChainedOutputBytes, maxInstances },
      energy: this.pool.energy.stats(),
    };
    if (this.kernelsRef.kernels !== undefined) stats.kernels = this.kernelsRef.kernels.stats();
    return stats;
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
    const settings = this.options.cluster!;
    // Loaded here, not with the package: only cluster mode needs it.
    const { Cluster } = await import('../cluster/cluster.js');
    this.clusterRef = await Cluster.join(settings, this.options.redis!, {
      workers: this.options.workers,
      defaultTimeoutMs: FUNCTION_DEFAULTS.timeoutMs,
      hashOf: (name) => this.hashes.get(name),
      holds: (key) => this.store.holds(key),
      registerFetched: async (name, bytes, options, replace) => {
        if (replace) {
          // Registered again in the cluster with other code: the copy fetched before goes.
          if (!this.fetched.has(name)) {
            throw new RegistryError(
              ErrorCode.ALREADY_REGISTERED,
              `host '${settings.hostId}' has its own function '${name}' with other code than cluster '${settings.name}' has under the name; unregister() it here`,
              { function: name, cluster: settings.name },
            );
          }
          this.unregisterHere(name);
        } else if (this.registry.has(name)) {
          return; // raced by a local register() of the same name: that one stands
        }
        await this.registerHere(name, bytes, options as FunctionOptions);
        this.fetched.add(name);
      },
      run: (name, input, timeoutMs) => this.pool.invoke(name, input, timeoutMs),
      runPart: (name, size, input, timeoutMs, part) => this.pool.invokeGroup(name, size, input, timeoutMs, 'spread', part),
      deliver: (id, from, to, data) => this.pool.deliver(id, from, to, data),
      abortPart: (id, error) => this.pool.abortPart(id, error),
      log: (level, message) => this.options.logger({ function: 'nuvola', level, message }),
    });
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

function checkName(name: string): void {
  if (typeof name !== 'string' || !FUNCTION_NAME.test(name)) {
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `function name must be 1 to 128 characters of letters, digits and _ . : / -, got ${JSON.stringify(name)}`,
      { path: 'name' },
    );
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
  return {
    output: raw.output,
    returnCode: raw.returnCode,
    cold: raw.cold ?? false,
    worker: raw.worker ?? -1,
    workerMs: raw.workerMs ?? 0,
    durationMs,
    ...(raw.usage !== undefined ? { usage: raw.usage } : {}),
    ...(host !== undefined ? { host } : {}),
    ...(raw.calls ? { calls: raw.calls } : {}),
  };
}

/** `cpuLimitMs` and `fuel` need the checks the rewrite adds, which code it cannot follow lacks. */
function checkEnforceable(name: string, options: ResolvedFunctionOptions, checked: CheckedModule): void {
  const why = checked.layout.resetNote ?? 'its code could not be instrumented';
  for (const [path, needed] of [
    ['cpuLimitMs', options.cpuLimitMs !== undefined && !checked.layout.interruptible],
    ['fuel', options.fuel !== undefined && !checked.layout.fuel],
  ] as const) {
    if (!needed) continue;
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `option options.${path} cannot be enforced for function '${name}': ${why}; leave ${path} out (timeoutMs still applies)`,
      { path: `options.${path}`, function: name },
    );
  }
}

function unknownFunction(name: string): RegistryError {
  return new RegistryError(ErrorCode.UNKNOWN_FUNCTION, `no function named '${name}' is registered; register() it first`, {
    function: name,
  });
}

/** How long createRuntime waits for Redis before going on without it (it reconnects by itself), in ms. */
const REDIS_CONNECT_WAIT_MS = 2000;

let memoryTierNoticed = false;

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

/** The file a module URL names (`new URL('./f.wasm', import.meta.url)`); only `file:` URLs. */
function modulePath(url: URL): string {
  if (url.protocol !== 'file:') {
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `register() takes a file: URL or a path, not ${url.protocol} (${url.href}); fetch the bytes and pass them`,
      {
        path: 'wasm',
      },
    );
  }
  return fileURLToPath(url);
}

/** Starts a runtime with a pool of worker threads. */
export async function createRuntime(options?: RuntimeOptions): Promise<Runtime> {
  const resolved = resolveRuntimeOptions(options);
  if (typeof (WebAssembly as { Suspending?: unknown }).Suspending !== 'function') {
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `nuvola needs Node.js 24 or newer (WebAssembly JSPI); this is ${process.version}. Install Node.js 24 (nvm install 24, or your system's package), ` +
        'or add it to your app with `npm i -D node@24` and start the app through an npm script, which puts that node first on the PATH',
      { path: 'node' },
    );
  }
  const warn = (message: string): void => resolved.logger({ function: 'nuvola', level: 'warn', message });
  let global: GlobalTier;
  if (resolved.redis === undefined) {
    global = new MemoryTier();
    // Said once per process, not per runtime: tests and tools start many.
    if (!memoryTierNoticed) {
      memoryTierNoticed = true;
      resolved.logger({
        function: 'nuvola',
        level: 'info',
        message: 'state: in-process global tier (this process only); pass `redis` to createRuntime() to share state across hosts',
      });
    }
  } else {
    const redis = new RedisTier(resolved.redis, warn);
    if (!(await redis.connected(REDIS_CONNECT_WAIT_MS))) {
      warn('state: Redis is not reachable yet; global state operations fail with E_STATE_UNAVAILABLE until it is (reconnecting)');
    }
    global = redis;
  }
  const registry = new Map<string, ResolvedFunctionOptions>();
  const store = new StateStore(global, { leaseMs: resolved.stateLeaseMs, quota: (owner) => registry.get(owner)?.stateQuota });
  const kernelsRef: { kernels: Kernels | undefined } = { kernels: undefined };
  const pool = new Pool(
    { size: resolved.workers, minWorkers: resolved.minWorkers, idleTimeoutMs: resolved.idleTimeoutMs },
    {
      maxOutputBytes: resolved.maxOutputBytes,
      maxIdleInstances: resolved.maxIdleInstances,
      maxLogBytes: resolved.maxLogBytes,
      spinMicros: resolved.idleSpinMicros,
      maxInstances: resolved.maxInstances,
      memoryPoolSize: resolved.memoryPoolSize,
      maxInputBytes: resolved.maxInputBytes,
      maxMessageBytes: resolved.maxMessageBytes,
      maxQueuedMessageBytes: resolved.maxQueuedMessageBytes,
      maxChainedOutputBytes: resolved.maxChainedOutputBytes,
    },
    resolved.logger,
    {
      state: stateService(store),
      kernels: kernelsService(() => (kernelsRef.kernels ??= new Kernels(resolved.kernels))),
    },
    (holder) => store.releaseHolder(holder),
  );
  try {
    await pool.ready();
  } catch (err) {
    await pool.close();
    await store.close();
    throw err;
  }
  const runtime = new Runtime(resolved, pool, store, kernelsRef, registry);
  if (resolved.cluster !== undefined) {
    try {
      await runtime.joinCluster();
    } catch (err) {
      await runtime.close();
      throw err;
    }
  }
  return runtime;
}
