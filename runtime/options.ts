/**
 * Options of every public entry point, their defaults (in one place) and their validation.
 * Everything is checked before any thread starts or any byte is read; a bad value throws an
 * {@link InvalidOptionError} whose `details.path` names the option.
 *
 * Why it is this long: every option of every entry point with its unit, default and check, kept
 * in one file on purpose (STYLE.md rule 5: one options object per entry point, one source of
 * defaults).
 */
import { realpathSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClusterSettings } from '../cluster/settings.js';
import type { RedisTarget } from '../state/redis-tier.js';
import { MAX_KEY_BYTES as MAX_STATE_KEY_BYTES } from '../state/store.js';
import { ErrorCode, InvalidOptionError } from './errors.js';
import { MIN_SECRET_LENGTH } from '../cluster/seal.js';
import { NO_WASI, type WasiConfig, type WasiDir } from './capabilities/wasi/config.js';

/** One line a guest logged, or one the runtime itself reports. */
export interface LogEntry {
  /** The function that logged, or `"nuvola"` for the runtime's own messages. */
  function: string;
  message: string;
  level: 'info' | 'warn';
}

/** Options of {@link createRuntime}. */
export interface RuntimeOptions {
  /** Worker threads in the pool. Default: the machine's available parallelism, at most 8. */
  workers?: number;
  /** Largest input accepted by `invoke`, in bytes. Default 16 MiB. */
  maxInputBytes?: number;
  /** Largest output a guest may produce, in bytes; more traps the guest. Default 16 MiB. */
  maxOutputBytes?: number;
  /** Largest module accepted by `register`, in bytes. Default 64 MiB. */
  maxModuleBytes?: number;
  /** Idle instances kept warm per function per worker. Default 8. */
  maxIdleInstances?: number;
  /**
   * Scale to zero: an instance idle this long is released, and so is a worker with nothing
   * to do for this long (down to `minWorkers`); the next call restores an instance from the
   * snapshot (and starts a worker) again. In milliseconds. Default 60000.
   */
  idleTimeoutMs?: number;
  /**
   * Memories of retired instances (those that did not fit among the idle ones) kept per
   * function per worker, reset to the snapshot, so that a later restore neither allocates a
   * memory nor first-touches its pages — the costly part of a restore. Like wasmtime's pooling
   * allocator. They expire with `idleTimeoutMs` and count towards `maxInstances`. 0 turns
   * recycling off. Default 8.
   */
  memoryPoolSize?: number;
  /** Workers kept running however idle. Default 0 (a runtime with no traffic holds no thread). */
  minWorkers?: number;
  /**
   * Most Wasm memories the runtime holds at once: its live instances' (idle, running or
   * suspended) and its spare memories (see `memoryPoolSize`). V8 gives a process about 16k; a
   * call that needs one more fails with `E_INSTANCE_LIMIT`. Default 15000.
   */
  maxInstances?: number;
  /** Largest message a rank may send to another (`comm.send`), in bytes. Default 64 MiB. */
  maxMessageBytes?: number;
  /**
   * Bytes of messages sent to one rank and not yet received by it, in bytes: a send that
   * would queue more fails with `E_QUEUE_FULL` (a send to a rank with nothing queued is always
   * taken, so one message up to `maxMessageBytes` still passes). Default 16 MiB.
   */
  maxQueuedMessageBytes?: number;
  /**
   * Calls `invoke` accepts that have not started yet (sent to a busy worker, or waiting for their
   * function's `maxConcurrency`): one more is refused at once with `E_QUEUE_FULL`, as piscina's
   * `maxQueue`, so an overloaded service sheds load instead of piling up calls that will time
   * out. Chained calls and groups are not counted against it. Default: no limit (`Infinity`).
   */
  maxQueue?: number;
  /**
   * Bytes of chained calls' outputs one invocation may hold (it holds them until it
   * returns): a callee's output that would go over fails that call in the caller with
   * `E_CHAIN_OUTPUT_LIMIT`. Default 64 MiB.
   */
  maxChainedOutputBytes?: number;
  /** Log bytes one invocation may write; the rest is dropped with a marker. Default 64 KiB. */
  maxLogBytes?: number;
  /**
   * How long an idle worker spins, in microseconds, watching for the next call before it
   * blocks — only while the wake-ups it measures average over 25 µs. Spinning trades a little
   * CPU for lower one-at-a-time latency; 0 turns it off. Default 100.
   */
  idleSpinMicros?: number;
  /** Receives guest `log` lines and runtime warnings. Default: written to stderr. */
  logger?: (entry: LogEntry) => void;
  /**
   * The global state tier: a Redis URL (`redis://user:password@host:port/db`, `rediss://` for
   * TLS), `{ url, tls, username, password }`, or a Redis Cluster: `{ cluster: [seed node
   * URLs], tls?, username?, password? }`. Default: none — an in-process tier that serves this
   * process only.
   */
  redis?: RedisTarget;
  /**
   * GPU kernels for guests (`kernels.*` in the SDK): `mode` `'auto'` (default: the GPU when
   * an adapter is found, else the CPU), `'gpu'` or `'cpu'`; `maxKernelMs` (default 10 000)
   * bounds one kernel call.
   */
  kernels?: { mode?: 'auto' | 'gpu' | 'cpu'; maxKernelMs?: number };
  /** How long a global state lock lasts unless released, in milliseconds. Default 30000. */
  stateLeaseMs?: number;
  /**
   * Cluster mode (needs `redis`): runtimes with the same Redis and cluster `name` form one
   * cluster. Functions registered on any host run on all; a host routes calls through Redis
   * when it runs `capacity` calls already (README "Many hosts"). `hostId` (default
   * hostname-pid-random), `heartbeatMs` (default 500), `hostTimeoutMs` (a host without a
   * heartbeat this long is dead and its calls are claimed by others; default 3000, at least
   * 2 × heartbeatMs), `capacity` (default 4 × workers; 0: this host only sends calls),
   * `idempotencyTtlMs` (how long a result stays recorded under its idempotency key; default 1 h).
   * `secret` (required): the cluster's shared secret, at least 32 characters — every call,
   * reply, registry entry, record and heartbeat a host leaves in Redis carries an HMAC under it,
   * and what fails to verify is dropped; a list rotates secrets (the first signs, all verify).
   * `grants`: the host resources this host gives functions it fetches from the cluster's
   * registry — `dirs` (directories, `{ host, writable? }`, under which a function's
   * `wasi.dirs` may lie) and `env` (names its `wasi.env` may set); default none.
   */
  cluster?: {
    name: string;
    secret: string | string[];
    grants?: { dirs?: { host: string; writable?: boolean }[]; env?: string[] };
    hostId?: string;
    heartbeatMs?: number;
    hostTimeoutMs?: number;
    capacity?: number;
    idempotencyTtlMs?: number;
  };
  /**
   * Where transpiled WebAssembly components are cached by content hash, so that registering
   * the same component again (here or in a later process) skips jco. Its contents run as code
   * in the workers: a directory that is not this user's alone (mode 0700 or stricter) is not
   * used. `null`: in memory only. Default: `nuvola-components-<uid>` in the system's
   * temporary directory.
   */
  componentCacheDir?: string | null;
}

/** Options of `rt.register`. */
export interface FunctionOptions {
  /** Longest an invocation may run, in milliseconds, before it fails with `E_TIMEOUT`. Default 30000. */
  timeoutMs?: number;
  /** Most linear memory an instance may have, in 64 KiB pages. Default 1024 (64 MiB). */
  memoryLimitPages?: number;
  /**
   * State keys the function may touch: exact names, or prefixes ending in `*`. Any other key
   * fails with `E_STATE_DENIED`. Default: no restriction.
   */
  stateKeys?: string[];
  /**
   * Functions the guest may call with `chain.call` (exact names); a call to any other traps
   * with `E_CHAIN_DENIED`. A callee runs under its own `stateKeys`, not the caller's: give a
   * function with narrow `stateKeys` a `callees` list too, or it reaches further through
   * callees with wider access. Default: any registered function.
   */
  callees?: string[];
  /**
   * What a warm instance keeps between calls. `'reset'` (default): after every call the
   * instance goes back to the snapshot taken after `init()` — memory and globals — so no call
   * sees what another wrote. `'keep'`: nothing is reset; a call may see globals and heap
   * left by earlier calls on the same instance (which instance serves a call is not
   * specified). Use `'keep'` only for caches that are safe to share between all callers.
   */
  reuse?: 'reset' | 'keep';
  /**
   * The interface the module speaks. `'nuvola'`: the guest SDK's ABI (exports `main`).
   * `'wasi'`: a WASI preview 1 command (exports `_start`): the input is its stdin, its stdout
   * the output, its stderr the log, its exit code the return code. `'component'`: a
   * WebAssembly component of the world in `wit/nuvola-function.wit`. Default `'auto'`: a
   * component by its header, a WASI command when it exports `_start` and not `main`, else
   * the SDK's ABI.
   */
  abi?: 'auto' | 'nuvola' | 'wasi' | 'component';
  /**
   * What the WASI imports give the guest (WASI commands, and SDK guests that import WASI):
   * `args` (argv[1..]; argv[0] is the function's name), `env` (its environment), and `dirs`,
   * the only host directories it may touch — `{ host, guest?, writable? }`, seen by the guest
   * at `guest` (default: the same path as on the host), read-only unless `writable`.
   * Default: no arguments, an empty environment, no file system.
   */
  wasi?: {
    args?: string[];
    env?: Record<string, string>;
    dirs?: { host: string; guest?: string; writable?: boolean }[];
  };
  /**
   * Most calls of this function running at once (instances it holds for calls, group ranks
   * and chained calls included). Calls over it wait on the main thread, in order, for one to
   * end — or fail with `E_TIMEOUT` when their timeout passes first — so a recursive fan-out
   * cannot take every instance from other functions. Default: half of `maxInstances`.
   */
  maxConcurrency?: number;
  /**
   * How much of the local state tier the function may hold: `bytes` (the room of the values
   * it allocated, plus what it appended here) and `keys` (local keys it allocated). A key
   * counts against the function whose call last created or grew its local allocation. A write,
   * append, pull or lookup that would go over fails with `E_STATE_QUOTA` and changes nothing.
   * Default `{ bytes: 256 MiB, keys: 65536 }`.
   */
  stateQuota?: { bytes?: number; keys?: number };
  /**
   * Most CPU time a call may use, in milliseconds: the worker thread's CPU in the call's
   * slices, not time suspended in host calls (like Cloudflare's CPU limit). A call over it is
   * stopped at its next check with `E_CPU_LIMIT`; its worker goes on. Enforced within a sweep
   * (5 ms) of the limit, from an upper bound: see README, "Metering". Default: no limit.
   */
  cpuLimitMs?: number;
  /**
   * Fuel a call may consume: one unit per function entry and loop iteration of the guest's
   * code, counted the same on every machine. A call that runs out fails with
   * `E_FUEL_EXHAUSTED`; `usage.fuel` reports what each call consumed. The counter is added to
   * the code only when this is set. Default: none.
   */
  fuel?: number;
}

/** Options of `rt.invoke`. */
export interface InvokeOptions {
  /** Overrides the function's `timeoutMs` for this call. */
  timeoutMs?: number;
  /**
   * Cluster mode only: a key (1–256 characters) naming this invocation. The first completion
   * under a key is recorded (for `cluster.idempotencyTtlMs`); a call with a key that completed
   * answers with that result without running again, and one whose key is running on another
   * host waits for it. Use it to retry after a timeout or a lost host without applying twice.
   */
  idempotencyKey?: string;
  /**
   * The state key this call mostly works on: a placement hint. In cluster mode the call runs on
   * the key's home host (each key hashes to one of the live hosts that take calls, so all calls
   * naming it meet there and find it in that host's local tier) — unless that host was full at
   * its last heartbeat: then on this host if its local tier holds the key and it has room, else
   * wherever there is room. On a single host it changes nothing. It grants no access:
   * `stateKeys` still applies.
   */
  stateKey?: string;
  /**
   * Cancels the call when aborted: one still waiting never starts, one suspended in a host call
   * is stopped there, one running on its worker's CPU is interrupted at its next check (as at
   * its deadline); the promise rejects with `E_CANCELLED` (`details.reason`). A call that has
   * already finished is answered as usual. In cluster mode a call sent to another host is only
   * abandoned: the promise rejects, the other host may still run it.
   */
  signal?: AbortSignal;
  /**
   * Record the call tree: the result's `calls` lists this call and every call it made with
   * `chain.call`, transitively (id, parent, function, worker, timing, outcome). Default false.
   */
  trace?: boolean;
}

export const RUNTIME_DEFAULTS = {
  workers: Math.max(1, Math.min(8, availableParallelism())),
  maxInputBytes: 16 * 1024 * 1024,
  maxOutputBytes: 16 * 1024 * 1024,
  maxModuleBytes: 64 * 1024 * 1024,
  maxIdleInstances: 8,
  idleTimeoutMs: 60_000,
  memoryPoolSize: 8,
  minWorkers: 0,
  maxInstances: 15_000,
  maxLogBytes: 64 * 1024,
  maxMessageBytes: 64 * 1024 * 1024,
  maxQueuedMessageBytes: 16 * 1024 * 1024,
  maxQueue: Infinity,
  maxChainedOutputBytes: 64 * 1024 * 1024,
  idleSpinMicros: 100,
  logger: (entry: LogEntry): void => {
    process.stderr.write(`[${entry.function}] ${entry.message}\n`);
  },
  redis: undefined as RedisTarget | undefined,
  cluster: undefined as RuntimeOptions['cluster'],
  kernels: { mode: 'auto', maxKernelMs: 10_000 } as { mode: 'auto' | 'gpu' | 'cpu'; maxKernelMs: number },
  stateLeaseMs: 30_000,
  componentCacheDir: join(tmpdir(), `nuvola-components-${process.getuid?.() ?? 'user'}`) as string | null,
} as const;

export const FUNCTION_DEFAULTS = {
  timeoutMs: 30_000,
  memoryLimitPages: 1024,
  stateKeys: undefined as string[] | undefined,
  callees: undefined as string[] | undefined,
  reuse: 'reset' as 'reset' | 'keep',
  abi: 'auto' as 'auto' | 'nuvola' | 'wasi' | 'component',
  wasi: NO_WASI,
  /** Undefined: half of the runtime's `maxInstances` (at least 1). */
  maxConcurrency: undefined as number | undefined,
  stateQuota: { bytes: 256 * 1024 * 1024, keys: 65_536 } as { bytes: number; keys: number },
  cpuLimitMs: undefined as number | undefined,
  fuel: undefined as number | undefined,
} as const;

/** The hard ceiling of a 32-bit Wasm memory, in pages (4 GiB). */
export const MAX_PAGES = 65536;
/** Longest allowed timeout, so that timers stay within Node's 32-bit range. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** What a function may be named (register, callees). */
export const FUNCTION_NAME = /^[A-Za-z0-9_.:/-]{1,128}$/;

export type ResolvedRuntimeOptions = Required<Omit<RuntimeOptions, 'redis' | 'componentCacheDir' | 'cluster'>> & {
  redis: RedisTarget | undefined;
  componentCacheDir: string | null;
  cluster: ClusterSettings | undefined;
};
export type ResolvedFunctionOptions = Required<
  Omit<FunctionOptions, 'stateKeys' | 'callees' | 'wasi' | 'stateQuota' | 'cpuLimitMs' | 'fuel'>
> & {
  cpuLimitMs: number | undefined;
  fuel: number | undefined;
  stateKeys: string[] | undefined;
  callees: string[] | undefined;
  wasi: WasiConfig;
  stateQuota: { bytes: number; keys: number };
};

function fail(path: string, expected: string, got: unknown): never {
  throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `option ${path} must be ${expected}, got ${describe(got)}`, { path });
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (value === null) return 'null';
  if (typeof value === 'object') return Array.isArray(value) ? 'an array' : 'an object';
  return String(value);
}

function checkObject(value: unknown, path: string, known: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail(path, 'an object', value);
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!known.includes(key)) {
      throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `unknown option ${path}.${key}; known options are ${known.join(', ')}`, {
        path: `${path}.${key}`,
      });
    }
  }
  return record;
}

function integer(value: unknown, path: string, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(path, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

export function resolveRuntimeOptions(options: unknown): ResolvedRuntimeOptions {
  const o = checkObject(options, 'options', Object.keys(RUNTIME_DEFAULTS));
  const logger = o['logger'];
  if (logger !== undefined && typeof logger !== 'function') fail('options.logger', 'a function', logger);
  const GiB = 1024 * 1024 * 1024;
  return {
    workers: integer(o['workers'], 'options.workers', 1, 128, RUNTIME_DEFAULTS.workers),
    maxInputBytes: integer(o['maxInputBytes'], 'options.maxInputBytes', 0, GiB, RUNTIME_DEFAULTS.maxInputBytes),
    maxOutputBytes: integer(o['maxOutputBytes'], 'options.maxOutputBytes', 0, GiB, RUNTIME_DEFAULTS.maxOutputBytes),
    maxModuleBytes: integer(o['maxModuleBytes'], 'options.maxModuleBytes', 8, GiB, RUNTIME_DEFAULTS.maxModuleBytes),
    maxIdleInstances: integer(o['maxIdleInstances'], 'options.maxIdleInstances', 0, 4096, RUNTIME_DEFAULTS.maxIdleInstances),
    idleTimeoutMs: integer(o['idleTimeoutMs'], 'options.idleTimeoutMs', 1, MAX_TIMEOUT_MS, RUNTIME_DEFAULTS.idleTimeoutMs),
    minWorkers: integer(o['minWorkers'], 'options.minWorkers', 0, 128, RUNTIME_DEFAULTS.minWorkers),
    memoryPoolSize: integer(o['memoryPoolSize'], 'options.memoryPoolSize', 0, 4096, RUNTIME_DEFAULTS.memoryPoolSize),
    maxInstances: integer(o['maxInstances'], 'options.maxInstances', 1, 1_000_000, RUNTIME_DEFAULTS.maxInstances),
    maxLogBytes: integer(o['maxLogBytes'], 'options.maxLogBytes', 0, GiB, RUNTIME_DEFAULTS.maxLogBytes),
    maxMessageBytes: integer(o['maxMessageBytes'], 'options.maxMessageBytes', 0, GiB, RUNTIME_DEFAULTS.maxMessageBytes),
    maxQueue:
      o['maxQueue'] === Infinity ? Infinity : integer(o['maxQueue'], 'options.maxQueue', 0, 1_000_000_000, RUNTIME_DEFAULTS.maxQueue),
    maxQueuedMessageBytes: integer(
      o['maxQueuedMessageBytes'],
      'options.maxQueuedMessageBytes',
      0,
      GiB,
      RUNTIME_DEFAULTS.maxQueuedMessageBytes,
    ),
    maxChainedOutputBytes: integer(
      o['maxChainedOutputBytes'],
      'options.maxChainedOutputBytes',
      0,
      GiB,
      RUNTIME_DEFAULTS.maxChainedOutputBytes,
    ),
    idleSpinMicros: integer(o['idleSpinMicros'], 'options.idleSpinMicros', 0, 10_000, RUNTIME_DEFAULTS.idleSpinMicros),
    logger: (logger as RuntimeOptions['logger']) ?? RUNTIME_DEFAULTS.logger,
    redis: redisTarget(o['redis']),
    kernels: kernelOptions(o['kernels']),
    stateLeaseMs: integer(o['stateLeaseMs'], 'options.stateLeaseMs', 10, MAX_TIMEOUT_MS, RUNTIME_DEFAULTS.stateLeaseMs),
    componentCacheDir: cacheDir(o['componentCacheDir']),
    cluster: clusterOptions(o['cluster'], o['redis'], integer(o['workers'], 'options.workers', 1, 128, RUNTIME_DEFAULTS.workers)),
  };
}

const CLUSTER_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

function clusterOptions(value: unknown, redis: unknown, workers: number): ClusterSettings | undefined {
  if (value === undefined) return undefined;
  const o = checkObject(value, 'options.cluster', [
    'name',
    'secret',
    'grants',
    'hostId',
    'heartbeatMs',
    'hostTimeoutMs',
    'capacity',
    'idempotencyTtlMs',
  ]);
  if (redis === undefined) fail('options.redis', 'set in cluster mode (the hosts of a cluster meet in Redis)', redis);
  if (typeof o['name'] !== 'string' || !CLUSTER_NAME.test(o['name'])) {
    fail('options.cluster.name', 'a name of 1 to 64 letters, digits and _ . : -', o['name']);
  }
  const hostId = o['hostId'] ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  if (typeof hostId !== 'string' || !CLUSTER_NAME.test(hostId))
    fail('options.cluster.hostId', 'an id of 1 to 64 letters, digits and _ . : -', hostId);
  const heartbeatMs = integer(o['heartbeatMs'], 'options.cluster.heartbeatMs', 10, 60_000, 500);
  const hostTimeoutMs = integer(
    o['hostTimeoutMs'],
    'options.cluster.hostTimeoutMs',
    2 * heartbeatMs,
    MAX_TIMEOUT_MS,
    Math.max(3000, 2 * heartbeatMs),
  );
  const secret = o['secret'];
  const secrets: unknown[] = Array.isArray(secret) ? secret : [secret];
  if (secrets.length === 0 || !secrets.every((s) => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH)) {
    // Described by its length only: a secret never goes into a message.
    const got = secrets.map((s) => (typeof s === 'string' ? `a string of ${s.length} characters` : describe(s))).join(', ');
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `option options.cluster.secret must be the cluster's shared secret, the same on every host: a string of at least ${MIN_SECRET_LENGTH} characters (e.g. from \`openssl rand -hex 32\`), or a list of them to rotate (the first signs, all verify); got ${got || 'an empty list'}`,
      { path: 'options.cluster.secret' },
    );
  }
  return {
    name: o['name'],
    secrets: [...(secrets as string[])],
    grants: clusterGrants(o['grants']),
    hostId,
    heartbeatMs,
    hostTimeoutMs,
    capacity: integer(o['capacity'], 'options.cluster.capacity', 0, 1_000_000, 4 * workers),
    idempotencyTtlMs: integer(o['idempotencyTtlMs'], 'options.cluster.idempotencyTtlMs', 1000, MAX_TIMEOUT_MS, 3_600_000),
  };
}

/** The real path of the directory `host` names (links resolved); the option at `path` otherwise fails. */
function realDirectory(host: string, path: string): string {
  try {
    const real = realpathSync(host);
    if (!statSync(real).isDirectory()) throw new Error('not a directory');
    return real;
  } catch (err) {
    throw new InvalidOptionError(ErrorCode.INVALID_OPTION, `option ${path}: ${host} is not a directory (${(err as Error).message})`, {
      path,
    });
  }
}

function clusterGrants(value: unknown): ClusterSettings['grants'] {
  const o = checkObject(value, 'options.cluster.grants', ['dirs', 'env']);
  const dirsValue = o['dirs'] ?? [];
  if (!Array.isArray(dirsValue)) fail('options.cluster.grants.dirs', 'an array of { host, writable? }', dirsValue);
  const dirs = dirsValue.map((d: unknown, i) => {
    const path = `options.cluster.grants.dirs[${i}]`;
    const entry = checkObject(d === undefined ? null : d, path, ['host', 'writable']);
    const host = entry['host'];
    if (typeof host !== 'string' || host === '' || host.includes('\0')) fail(`${path}.host`, 'the path of a directory', host);
    const real = realDirectory(host, `${path}.host`);
    const writable = entry['writable'] ?? false;
    if (typeof writable !== 'boolean') fail(`${path}.writable`, 'a boolean', writable);
    return { host: real, writable };
  });
  const env = o['env'] ?? [];
  if (!Array.isArray(env) || !env.every((n: unknown) => typeof n === 'string' && n !== '' && !n.includes('=') && !n.includes('\0'))) {
    fail('options.cluster.grants.env', 'an array of environment variable names', env);
  }
  return { dirs, env: [...(env as string[])] };
}

/** `maxInstances`: the runtime's, which sets the default `maxConcurrency`. */
export function resolveFunctionOptions(options: unknown, maxInstances: number = RUNTIME_DEFAULTS.maxInstances): ResolvedFunctionOptions {
  const o = checkObject(options, 'options', Object.keys(FUNCTION_DEFAULTS));
  const quota = checkObject(o['stateQuota'], 'options.stateQuota', ['bytes', 'keys']);
  return {
    maxConcurrency: integer(o['maxConcurrency'], 'options.maxConcurrency', 1, 1_000_000, Math.max(1, Math.floor(maxInstances / 2))),
    stateQuota: {
      bytes: integer(quota['bytes'], 'options.stateQuota.bytes', 0, 2 ** 53 - 1, FUNCTION_DEFAULTS.stateQuota.bytes),
      keys: integer(quota['keys'], 'options.stateQuota.keys', 0, 2 ** 31 - 1, FUNCTION_DEFAULTS.stateQuota.keys),
    },
    timeoutMs: integer(o['timeoutMs'], 'options.timeoutMs', 1, MAX_TIMEOUT_MS, FUNCTION_DEFAULTS.timeoutMs),
    memoryLimitPages: integer(o['memoryLimitPages'], 'options.memoryLimitPages', 1, MAX_PAGES, FUNCTION_DEFAULTS.memoryLimitPages),
    stateKeys: stateKeys(o['stateKeys']),
    callees: callees(o['callees']),
    reuse: oneOf(o['reuse'], 'options.reuse', ['reset', 'keep'] as const, FUNCTION_DEFAULTS.reuse),
    abi: oneOf(o['abi'], 'options.abi', ['auto', 'nuvola', 'wasi', 'component'] as const, FUNCTION_DEFAULTS.abi),
    wasi: wasiOptions(o['wasi']),
    cpuLimitMs: limit(o['cpuLimitMs'], 'options.cpuLimitMs', MAX_TIMEOUT_MS, 'leave it out for no CPU limit'),
    fuel: limit(o['fuel'], 'options.fuel', Number.MAX_SAFE_INTEGER, 'leave it out for no fuel budget'),
  };
}

/** An optional positive integer limit (`cpuLimitMs`, `fuel`): absent means none, never 0. */
function limit(value: unknown, path: string, max: number, none: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    fail(path, `an integer from 1 to ${max} (${none})`, value);
  }
  return value;
}

function cacheDir(value: unknown): string | null {
  if (value === undefined) return RUNTIME_DEFAULTS.componentCacheDir;
  if (value === null) return null;
  if (typeof value !== 'string' || value === '') fail('options.componentCacheDir', 'a directory path or null', value);
  return resolve(value);
}

function wasiOptions(value: unknown): WasiConfig {
  if (value === undefined) return NO_WASI;
  const o = checkObject(value, 'options.wasi', ['args', 'env', 'dirs']);
  const plain = (v: unknown): v is string => typeof v === 'string' && !v.includes('\0');
  const args = o['args'] ?? [];
  if (!Array.isArray(args) || !args.every(plain)) fail('options.wasi.args', 'an array of strings without NUL', args);
  const envObject = checkObject(o['env'], 'options.wasi.env', Object.keys((o['env'] as object | undefined) ?? {}));
  const env = Object.entries(envObject).map(([name, v]) => {
    if (name === '' || name.includes('=') || !plain(name) || !plain(v)) {
      fail(`options.wasi.env.${name}`, 'a string (and a name without = or NUL)', v);
    }
    return `${name}=${v}`;
  });
  const dirsValue = o['dirs'] ?? [];
  if (!Array.isArray(dirsValue)) fail('options.wasi.dirs', 'an array of { host, guest?, writable? }', dirsValue);
  if (dirsValue.length > 0 && process.platform !== 'linux') {
    // Grants are reached only through directory descriptors and /proc/self/fd (capabilities/wasi/paths.ts).
    throw new InvalidOptionError(
      ErrorCode.INVALID_OPTION,
      `option options.wasi.dirs: granting directories to a WASI guest needs Linux (/proc/self/fd); this is ${process.platform}: leave dirs out`,
      { path: 'options.wasi.dirs' },
    );
  }
  const dirs = dirsValue.map((d: unknown, i): WasiDir => {
    const path = `options.wasi.dirs[${i}]`;
    const entry = checkObject(d === undefined ? null : d, path, ['host', 'guest', 'writable']);
    const host = entry['host'];
    if (!plain(host) || host === '') fail(`${path}.host`, 'the path of a directory', host);
    const real = realDirectory(host, `${path}.host`);
    const guest = entry['guest'] ?? host;
    if (!plain(guest) || guest === '') fail(`${path}.guest`, 'a path', guest);
    const writable = entry['writable'] ?? false;
    if (typeof writable !== 'boolean') fail(`${path}.writable`, 'a boolean', writable);
    return { host: real, guest, writable };
  });
  return { args: [...(args as string[])], env, dirs };
}

export function resolveInvokeOptions(
  options: unknown,
  fn: { timeoutMs: number },
): {
  timeoutMs: number;
  trace: boolean;
  idempotencyKey: string | undefined;
  stateKey: string | undefined;
  signal: AbortSignal | undefined;
} {
  const o = checkObject(options, 'options', ['timeoutMs', 'trace', 'idempotencyKey', 'stateKey', 'signal']);
  const signal = o['signal'];
  if (signal !== undefined && !(signal instanceof AbortSignal)) fail('options.signal', 'an AbortSignal', signal);
  const trace = o['trace'];
  if (trace !== undefined && typeof trace !== 'boolean') fail('options.trace', 'a boolean', trace);
  const key = o['idempotencyKey'];
  if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 256)) {
    fail('options.idempotencyKey', 'a string of 1 to 256 characters', key);
  }
  const stateKey = o['stateKey'];
  if (
    stateKey !== undefined &&
    (typeof stateKey !== 'string' || stateKey.length === 0 || Buffer.byteLength(stateKey) > MAX_STATE_KEY_BYTES)
  ) {
    fail('options.stateKey', `a state key: a string of 1 to ${MAX_STATE_KEY_BYTES} bytes of UTF-8`, stateKey);
  }
  return {
    timeoutMs: integer(o['timeoutMs'], 'options.timeoutMs', 1, MAX_TIMEOUT_MS, fn.timeoutMs),
    trace: trace === true,
    idempotencyKey: key as string | undefined,
    stateKey: stateKey as string | undefined,
    signal: signal as AbortSignal | undefined,
  };
}

function oneOf<T extends string>(value: unknown, path: string, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) fail(path, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`, value);
  return value as T;
}

function kernelOptions(value: unknown): { mode: 'auto' | 'gpu' | 'cpu'; maxKernelMs: number } {
  const o = checkObject(value, 'options.kernels', ['mode', 'maxKernelMs']);
  return {
    mode: oneOf(o['mode'], 'options.kernels.mode', ['auto', 'gpu', 'cpu'] as const, 'auto'),
    maxKernelMs: integer(o['maxKernelMs'], 'options.kernels.maxKernelMs', 1, MAX_TIMEOUT_MS, 10_000),
  };
}

function redisTarget(value: unknown): RedisTarget | undefined {
  if (value === undefined) return undefined;
  const isUrl = (v: unknown): v is string => typeof v === 'string' && /^rediss?:\/\//.test(v);
  if (isUrl(value)) return value;
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = checkObject(value, 'options.redis', ['url', 'cluster', 'tls', 'username', 'password']);
    if (o['cluster'] !== undefined) {
      const nodes = o['cluster'];
      if (o['url'] !== undefined) fail('options.redis.url', 'absent with options.redis.cluster (the seed nodes say where)', o['url']);
      if (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every(isUrl)) {
        fail('options.redis.cluster', 'a non-empty array of redis:// URLs of Redis Cluster nodes', nodes);
      }
    } else if (!isUrl(o['url'])) fail('options.redis.url', 'a redis:// or rediss:// URL', o['url']);
    for (const field of ['username', 'password'] as const) {
      if (o[field] !== undefined && typeof o[field] !== 'string') fail(`options.redis.${field}`, 'a string', o[field]);
    }
    if (o['tls'] !== undefined && (o['tls'] === null || typeof o['tls'] !== 'object'))
      fail('options.redis.tls', 'an object of TLS options', o['tls']);
    return value as RedisTarget;
  }
  return fail('options.redis', 'a redis:// or rediss:// URL, { url, tls?, username?, password? } or { cluster: [urls], … }', value);
}

function callees(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((n) => typeof n !== 'string' || !FUNCTION_NAME.test(n))) {
    fail('options.callees', 'an array of function names (1 to 128 characters of letters, digits and _ . : / -)', value);
  }
  return [...(value as string[])];
}

function stateKeys(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((k) => typeof k !== 'string' || k.length === 0)) {
    fail('options.stateKeys', 'an array of non-empty key names or prefixes ending in *', value);
  }
  return [...(value as string[])];
}
