// Generated from the options schema in runtime/options.ts by `npm run docs`; do not edit here
// (npm test fails when it drifts). Change the schema, then run `npm run docs`.
import type { RedisTarget } from '../state/redis-tier.js';
import type { LogEntry } from './log-entry.js';

/** Options of `createRuntime(options)`. */
export interface RuntimeOptions {
  /**
   * Worker threads in the pool.
   * Range: 1 – 128. Default: the machine's available parallelism, at most 8.
   */
  workers?: number;
  /**
   * Largest input `invoke` accepts, in bytes (`E_INPUT_TOO_LARGE`).
   * Range: 0 – 1 GiB. Default: 16 MiB.
   */
  maxInputBytes?: number;
  /**
   * Largest output a guest may produce, in bytes; more traps the guest (`E_OUTPUT_TOO_LARGE`).
   * Range: 0 – 1 GiB. Default: 16 MiB.
   */
  maxOutputBytes?: number;
  /**
   * Largest module `register` accepts, in bytes (`E_MODULE_TOO_LARGE`).
   * Range: 8 – 1 GiB. Default: 64 MiB.
   */
  maxModuleBytes?: number;
  /**
   * Idle instances kept warm per function per worker.
   * Range: 0 – 4096. Default: 8.
   */
  maxIdleInstances?: number;
  /**
   * Scale to zero: an instance idle this long is released, and so is a worker with nothing to do for
   * this long (down to `minWorkers`); the next call restores an instance from the snapshot (and starts a
   * worker) again. In milliseconds.
   * Range: 1 – 2³¹−1. Default: 60 000.
   */
  idleTimeoutMs?: number;
  /**
   * Memories of retired instances (those that did not fit among the idle ones) kept per function per
   * worker, reset to the snapshot, so that a later restore neither allocates a memory nor first-touches
   * its pages — the costly part of a restore (like wasmtime's pooling allocator). They expire with
   * `idleTimeoutMs` and count towards `maxInstances`; 0 turns recycling off.
   * Range: 0 – 4096. Default: 8.
   */
  memoryPoolSize?: number;
  /**
   * Workers kept running however idle (0: a runtime with no traffic holds no thread).
   * Range: 0 – 128. Default: 0.
   */
  minWorkers?: number;
  /**
   * Most Wasm memories the runtime holds at once: its live instances' (idle, running or suspended) and
   * its spare memories (see `memoryPoolSize`). V8 gives a process about 16k; a call that needs one more
   * fails with `E_INSTANCE_LIMIT`.
   * Range: 1 – 1 000 000. Default: 15 000.
   */
  maxInstances?: number;
  /**
   * Log bytes one invocation may write; the rest is dropped and the last line says so.
   * Range: 0 – 1 GiB. Default: 64 KiB.
   */
  maxLogBytes?: number;
  /**
   * Largest message a rank may send to another (`comm.send`), in bytes (`E_MESSAGE_TOO_LARGE`).
   * Range: 0 – 1 GiB. Default: 64 MiB.
   */
  maxMessageBytes?: number;
  /**
   * Bytes of messages sent to one rank and not yet received by it: a send that would queue more fails
   * with `E_QUEUE_FULL` (a send to a rank with nothing queued is always taken, so one message up to
   * `maxMessageBytes` still passes).
   * Range: 0 – 1 GiB. Default: 16 MiB.
   */
  maxQueuedMessageBytes?: number;
  /**
   * Calls `invoke` accepts that have not started yet (sent to a busy worker, or waiting for their
   * function's `maxConcurrency`): one more is refused at once with `E_QUEUE_FULL`, as piscina's
   * `maxQueue`, so an overloaded service sheds load instead of piling up calls that will time out.
   * Chained calls and groups are not counted against it.
   * Range: 0 – 1 000 000 000, or `Infinity`. Default: no limit (`Infinity`).
   */
  maxQueue?: number;
  /**
   * Bytes of chained calls' outputs one invocation may hold (it holds them until it returns): a callee's
   * output that would go over fails that call in the caller with `E_CHAIN_OUTPUT_LIMIT`.
   * Range: 0 – 1 GiB. Default: 64 MiB.
   */
  maxChainedOutputBytes?: number;
  /**
   * How long an idle worker spins, in microseconds, watching for the next call before it blocks — only
   * while the wake-ups it measures average over 25 µs (an idle VM), where it lowers one-at-a-time
   * latency ~3×; it costs up to that much CPU per batch. 0 turns it off.
   * Range: 0 – 10 000. Default: 100.
   */
  idleSpinMicros?: number;
  /**
   * Receives guest `log` lines and the runtime's warnings.
   * Default: written to stderr.
   */
  logger?: (entry: LogEntry) => void;
  /**
   * The global state tier: a Redis URL (`redis://user:password@host:port/db`, `rediss://` for TLS), `{
   * url, tls, username, password }`, or a Redis Cluster: `{ cluster: [seed node URLs], tls?, username?,
   * password? }`.
   * Default: none: an in-process tier that serves this process only (a log line says so).
   */
  redis?: RedisTarget;
  /**
   * Cluster mode (needs `redis`): functions registered on any host run on all; a host routes calls
   * through Redis when it runs `capacity` calls already (docs/guides/many-hosts.md).
   * Default: none: a single host.
   */
  cluster?: {
    /**
     * The cluster: runtimes with the same Redis and `name` form one cluster.
     * Range: 1 – 64 letters, digits and `_ . : -`. Required.
     */
    name: string;
    /**
     * The cluster's shared secret, the same on every host: every call, reply, registry entry, record and
     * heartbeat a host leaves in Redis carries an HMAC under it, and what fails to verify is dropped. A
     * list rotates secrets (the first signs, all verify).
     * Range: at least 32 characters (e.g. from `openssl rand -hex 32`). Required.
     */
    secret: string | string[];
    /**
     * The host resources this host gives functions it fetches from the cluster's registry
     * (`E_CLUSTER_GRANT` for more).
     * Default: none.
     */
    grants?: {
      /**
       * Directories under which a fetched function's `wasi.dirs` may lie (writable ones only under a
       * `writable` grant).
       * Default: none.
       */
      dirs?: { host: string; writable?: boolean }[];
      /**
       * Environment variable names a fetched function's `wasi.env` may set.
       * Default: none.
       */
      env?: string[];
    };
    /**
     * This host's id in the cluster.
     * Range: 1 – 64 letters, digits and `_ . : -`. Default: hostname-pid-random.
     */
    hostId?: string;
    /**
     * How often a host says it is alive, in milliseconds.
     * Range: 10 – 60 000. Default: 500.
     */
    heartbeatMs?: number;
    /**
     * A host without a heartbeat this long is dead, and its calls are claimed by others; in milliseconds.
     * Range: 2 × `heartbeatMs` – 2³¹−1. Default: 3000 (at least 2 × `heartbeatMs`).
     */
    hostTimeoutMs?: number;
    /**
     * Calls this host runs at once before it routes more through Redis; 0: this host only sends calls.
     * Range: 0 – 1 000 000. Default: 4 × `workers`.
     */
    capacity?: number;
    /**
     * How long a result stays recorded under its idempotency key, in milliseconds.
     * Range: 1000 – 2³¹−1. Default: 3 600 000 (1 h).
     */
    idempotencyTtlMs?: number;
    /**
     * Work streams the cluster's calls are spread over, each under its own hash tag, so a Redis Cluster
     * spreads one cluster's work over its masters; every host reads all of them. A cluster has one count:
     * the first host to join stores its own, later ones take it (to change it, stop every host and delete
     * the key `nuvola:cl:{<name>}:partitions`).
     * Range: 0 – 256. Default: 0: from the Redis topology (one per master of a Redis Cluster, 1 on a
     * single Redis).
     */
    partitions?: number;
  };
  /**
   * GPU kernels for guests (`kernels.*` in the SDK) and `rt.kernels`.
   * Default: each field’s default.
   */
  kernels?: {
    /**
     * `'auto'`: the GPU when an adapter is found, else the CPU; `'gpu'`: fail without one
     * (`E_KERNEL_UNAVAILABLE`); `'cpu'`: never the GPU.
     * Default: `'auto'`.
     */
    mode?: 'auto' | 'gpu' | 'cpu';
    /**
     * Longest one kernel call (its GPU or CPU work) may take, in milliseconds: `E_KERNEL_TIMEOUT`, and the
     * device is replaced.
     * Range: 1 – 2³¹−1. Default: 10 000.
     */
    maxKernelMs?: number;
  };
  /**
   * How long a global state lock lasts unless released, in milliseconds.
   * Range: 10 – 2³¹−1. Default: 30 000.
   */
  stateLeaseMs?: number;
  /**
   * The most the region arena may hold, in bytes: the one shared memory per host where mapped state keys
   * (guest regions, `rt.state.view`) live. Reserved as virtual address space only; pages are used as
   * keys are mapped.
   * Range: 64 KiB – 4 GiB − 64 KiB. Default: 1 GiB.
   */
  regionBytes?: number;
  /**
   * Where transpiled WebAssembly components are cached by content hash, so that registering the same
   * component again (here or in a later process) skips jco. Its contents run as code in the workers: a
   * directory that is not this user's alone (mode 0700 or stricter) is not used. `null`: in memory only.
   * Default: `nuvola-components-<uid>` in the system's temporary directory.
   */
  componentCacheDir?: string | null;
}

/** Options of `rt.register(name, wasm, options)`. */
export interface FunctionOptions {
  /**
   * Longest an invocation may run, in milliseconds, before it fails with `E_TIMEOUT`; at `register`, it
   * bounds the boot and each restore.
   * Range: 1 – 2³¹−1. Default: 30 000.
   */
  timeoutMs?: number;
  /**
   * Most linear memory an instance may have, in 64 KiB pages (`E_MEMORY_LIMIT`).
   * Range: 1 – 65 536. Default: 1024 (64 MiB).
   */
  memoryLimitPages?: number;
  /**
   * State keys the function may touch: exact names, or prefixes ending in `*`. Any other key fails with
   * `E_STATE_DENIED`.
   * Default: no restriction.
   */
  stateKeys?: string[];
  /**
   * Functions the guest may call with `chain.call` (exact names); a call to any other traps with
   * `E_CHAIN_DENIED`. A callee runs under its own `stateKeys`, not the caller's: give a function with
   * narrow `stateKeys` a `callees` list too, or it reaches further through callees with wider access.
   * Default: any registered function.
   */
  callees?: string[];
  /**
   * What a warm instance keeps between calls. `'reset'`: after every call the instance goes back to the
   * snapshot taken after `init()` — memory and globals — so no call sees what another wrote. `'keep'`:
   * nothing is reset; a call may see globals and heap left by earlier calls on the same instance (which
   * instance serves a call is not specified). Use `'keep'` only for caches that are safe to share
   * between all callers.
   * Default: `'reset'`.
   */
  reuse?: 'reset' | 'keep';
  /**
   * The interface the module speaks. `'nuvola'`: the guest SDK's ABI (exports `main`). `'wasi'`: a WASI
   * preview 1 command (exports `_start`): the input is its stdin, its stdout the output, its stderr the
   * log, its exit code the return code. `'component'`: a WebAssembly component of the world in
   * `wit/nuvola-function.wit`. `'auto'`: a component by its header, a WASI command when it exports
   * `_start` and not `main`, else the SDK's ABI (`describe(name).abi` says which).
   * Default: `'auto'`.
   */
  abi?: 'auto' | 'nuvola' | 'wasi' | 'component';
  /**
   * What the WASI imports give the guest (WASI commands, and SDK guests that import WASI).
   * Default: no arguments, an empty environment, no file system.
   */
  wasi?: {
    /**
     * Argv[1..]; argv[0] is the function's name.
     * Default: none.
     */
    args?: string[];
    /**
     * Its environment.
     * Default: empty.
     */
    env?: Record<string, string>;
    /**
     * The only host directories it may touch, seen by the guest at `guest` (default: the same path as on
     * the host), read-only unless `writable`. Linux only: reached through directory descriptors.
     * Default: no file system.
     */
    dirs?: { host: string; guest?: string; writable?: boolean }[];
  };
  /**
   * Most calls of this function running at once (instances it holds for calls, group ranks and chained
   * calls included). Calls over it wait on the main thread, in order, for one to end — or fail with
   * `E_TIMEOUT` when their timeout passes first — so a recursive fan-out cannot take every instance from
   * other functions.
   * Range: 1 – 1 000 000. Default: half of `maxInstances` (at least 1).
   */
  maxConcurrency?: number;
  /**
   * How much of the local state tier the function may hold. A key counts against the function whose call
   * last created or grew its local allocation (a lookup or pull of a global value allocates too); values
   * the embedding service writes count against nobody. A write, append, pull or lookup over it fails
   * with `E_STATE_QUOTA` and changes nothing.
   * Default: each field’s default.
   */
  stateQuota?: {
    /**
     * The room of the local values the function allocated, plus what it appended through this host until
     * cleared or deleted.
     * Range: 0 – 2⁵³−1. Default: 256 MiB.
     */
    bytes?: number;
    /**
     * Local keys the function allocated.
     * Range: 0 – 2³¹−1. Default: 65 536.
     */
    keys?: number;
  };
  /**
   * Most CPU time a call may use, in milliseconds: the worker thread's CPU in the call's slices, not
   * time suspended in host calls (like Cloudflare's CPU limit). A call over it is stopped at its next
   * check with `E_CPU_LIMIT`; its worker goes on. Enforced within a sweep (5 ms) of the limit, from an
   * upper bound (docs/guides/metering.md). `register` refuses it for code the rewrite could not
   * instrument.
   * Range: 1 – 2³¹−1. Default: no limit.
   */
  cpuLimitMs?: number;
  /**
   * Fuel a call may consume: one unit per function entry and loop iteration of the guest's code, counted
   * the same on every machine. A call that runs out fails with `E_FUEL_EXHAUSTED`; `usage.fuel` reports
   * what each call consumed. The counter is added to the code only when this is set. `register` refuses
   * it for code the rewrite could not instrument.
   * Range: 1 – 2⁵³−1. Default: none.
   */
  fuel?: number;
}

/** Options of `rt.invoke(name, input, options)`. */
export interface InvokeOptions {
  /**
   * Overrides the function's `timeoutMs` (in milliseconds).
   * Range: 1 – 2³¹−1. Default: the function's `timeoutMs`.
   */
  timeoutMs?: number;
  /**
   * Record the call tree: the result's `calls` lists this call and every call it made with `chain.call`,
   * transitively (id, parent, function, worker, timing, outcome).
   * Default: `false`.
   */
  trace?: boolean;
  /**
   * Cluster mode only: a key naming this invocation. The first completion under a key is recorded (for
   * `cluster.idempotencyTtlMs`); a call with a key that completed answers with that result without
   * running again, and one whose key is running on another host waits for it. Use it to retry after a
   * timeout or a lost host without applying twice.
   * Range: 1 – 256 characters. Default: none.
   */
  idempotencyKey?: string;
  /**
   * The state key this call mostly works on: a placement hint. In cluster mode the call runs on the
   * key's home host (each key hashes to one of the live hosts that take calls, so all calls naming it
   * meet there and find it in that host's local tier) — unless that host was full at its last heartbeat:
   * then on this host if its local tier holds the key and it has room, else wherever there is room. On a
   * single host it changes nothing. It grants no access: `stateKeys` still applies.
   * Range: a state key: 1 – 1024 bytes of UTF-8. Default: none.
   */
  stateKey?: string;
  /**
   * Cancels the call when aborted: one still waiting never starts, one suspended in a host call is
   * stopped there, one running on its worker's CPU is interrupted at its next check (as at its
   * deadline); the promise rejects with `E_CANCELLED` (`details.reason`). A call that has already
   * finished is answered as usual. In cluster mode a call sent to another host is only abandoned: the
   * promise rejects, the other host may still run it.
   * Default: none.
   */
  signal?: AbortSignal;
}

/** Options of `rt.invokeChain(names, input, options)`. */
export interface ChainOptions {
  /**
   * Overrides each stage's `timeoutMs` (in milliseconds).
   * Range: 1 – 2³¹−1. Default: each stage's `timeoutMs`.
   */
  timeoutMs?: number;
  /**
   * Warm the later stages' instances on the worker that runs the first, in the gaps between stages.
   * Default: `true`.
   */
  prewarm?: boolean;
  /**
   * Cancels the stage running when aborted (as `invoke(…, { signal })`); no later stage starts.
   * Default: none.
   */
  signal?: AbortSignal;
}

/** Options of `rt.invokeGroup(name, size, input, options)`. */
export interface GroupOptions {
  /**
   * Overrides each rank's `timeoutMs` (in milliseconds).
   * Range: 1 – 2³¹−1. Default: each rank's `timeoutMs`.
   */
  timeoutMs?: number;
  /**
   * Where the ranks run. `'spread'`: over the workers, for ranks that compute in parallel. `'pack'`: all
   * on one worker, where messages never leave the thread — for ranks that mostly talk (a 1 KiB round
   * trip then costs ~7 µs instead of ~60–120 µs). `'hosts'` (cluster mode): split over the cluster's
   * hosts that take calls, in contiguous blocks of ranks; messages between hosts go through Redis, with
   * the same semantics (per-sender order, the first failing rank ends the group everywhere).
   * Default: `'spread'`.
   */
  placement?: 'spread' | 'pack' | 'hosts';
}
