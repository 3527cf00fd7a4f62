/**
 * Options of every public entry point in one schema: each option's type, what it means, its
 * range and its default are written once, here. Validation walks the schema; the defaults
 * (`RUNTIME_DEFAULTS`, `FUNCTION_DEFAULTS`), the option interfaces (`options-types.ts`) and
 * the options table of the docs (`docs/reference/options.md`) are derived from it
 * (`npm run docs`; `npm test` fails when they drift). Everything is checked before any thread
 * starts or any byte is read; a bad value throws an {@link InvalidOptionError} whose
 * `details.path` names the option.
 *
 * Why it is this long: every option of every entry point with its unit, default, doc and
 * check, kept in one file on purpose (STYLE.md rule 5: one options object per entry point, one
 * source of defaults); it is data, written with the building blocks of option-spec.ts.
 */
import { realpathSync, statSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { availableParallelism, hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ClusterSettings } from '../cluster/settings.js';
import type { RedisTarget } from '../state/redis-tier.js';
import { MAX_KEY_BYTES as MAX_STATE_KEY_BYTES } from '../state/store.js';
import { DEFAULT_MAX_KERNEL_MS } from '../kernels/index.js';
import { ErrorCode, InvalidOptionError } from './errors.js';
import { MIN_SECRET_LENGTH } from '../cluster/seal.js';
import { NO_WASI, type WasiConfig, type WasiDir } from './capabilities/wasi/config.js';
import type { LogEntry } from './log-entry.js';
import type { FunctionOptions, RuntimeOptions } from './options-types.js';
import {
  checkObject,
  defaultsOf,
  describe,
  fail,
  formatNumber,
  flag,
  GiB,
  group,
  int,
  KiB,
  MAX_TIMEOUT_MS,
  MiB,
  oneOf,
  resolveWith,
  type OptionSpec,
  type Schema,
} from './option-spec.js';

export type { LogEntry } from './log-entry.js';
export type { ChainOptions, FunctionOptions, GroupOptions, InvokeOptions, RuntimeOptions } from './options-types.js';
export { formatNumber, type OptionContext, type OptionSpec, type Schema } from './option-spec.js';

/** The hard ceiling of a 32-bit Wasm memory, in pages (4 GiB). */
export const MAX_PAGES = 65536;
/** What a function may be named (register, callees). */
export const FUNCTION_NAME = /^[A-Za-z0-9_.:/-]{1,128}$/;
const CLUSTER_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

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

const plain = (v: unknown): v is string => typeof v === 'string' && !v.includes('\0');
const isRedisUrl = (v: unknown): v is string => typeof v === 'string' && /^rediss?:\/\//.test(v);

// ---- createRuntime ---------------------------------------------------------------------------

const KERNEL_OPTIONS: Schema = {
  mode: oneOf(
    ['auto', 'gpu', 'cpu'] as const,
    'auto',
    "`'auto'`: the GPU when an adapter is found, else the CPU; `'gpu'`: fail without one (`E_KERNEL_UNAVAILABLE`); `'cpu'`: never the GPU",
  ),
  maxKernelMs: int({
    min: 1,
    max: MAX_TIMEOUT_MS,
    default: DEFAULT_MAX_KERNEL_MS,
    doc: 'longest one kernel call (its GPU or CPU work) may take, in milliseconds: `E_KERNEL_TIMEOUT`, and the device is replaced',
  }),
};

const GRANT_OPTIONS: Schema = {
  dirs: {
    type: '{ host: string; writable?: boolean }[]',
    doc: "directories under which a fetched function's `wasi.dirs` may lie (writable ones only under a `writable` grant)",
    default: [],
    defaultDoc: 'none',
    check(value, path) {
      if (!Array.isArray(value)) fail(path, 'an array of { host, writable? }', value);
      return value.map((d: unknown, i) => {
        const at = `${path}[${i}]`;
        const entry = checkObject(d === undefined ? null : d, at, ['host', 'writable']);
        const host = entry['host'];
        if (typeof host !== 'string' || host === '' || host.includes('\0')) fail(`${at}.host`, 'the path of a directory', host);
        const real = realDirectory(host, `${at}.host`);
        const writable = entry['writable'] ?? false;
        if (typeof writable !== 'boolean') fail(`${at}.writable`, 'a boolean', writable);
        return { host: real, writable };
      });
    },
  },
  env: {
    type: 'string[]',
    doc: "environment variable names a fetched function's `wasi.env` may set",
    default: [],
    defaultDoc: 'none',
    check(value, path) {
      if (
        !Array.isArray(value) ||
        !value.every((n: unknown) => typeof n === 'string' && n !== '' && !n.includes('=') && !n.includes('\0'))
      ) {
        fail(path, 'an array of environment variable names', value);
      }
      return [...(value as string[])];
    },
  },
};

const CLUSTER_OPTIONS: Schema = {
  name: {
    type: 'string',
    doc: 'the cluster: runtimes with the same Redis and `name` form one cluster',
    range: '1 – 64 letters, digits and `_ . : -`',
    required: true,
    check(value, path) {
      if (typeof value !== 'string' || !CLUSTER_NAME.test(value)) fail(path, 'a name of 1 to 64 letters, digits and _ . : -', value);
      return value;
    },
  },
  secret: {
    type: 'string | string[]',
    doc:
      "the cluster's shared secret, the same on every host: every call, reply, registry entry, record and heartbeat a host " +
      'leaves in Redis carries an HMAC under it, and what fails to verify is dropped. A list rotates secrets (the first signs, all verify)',
    range: `at least ${MIN_SECRET_LENGTH} characters (e.g. from \`openssl rand -hex 32\`)`,
    required: true,
    check(value, path) {
      const secrets: unknown[] = Array.isArray(value) ? value : [value];
      if (secrets.length === 0 || !secrets.every((s) => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH)) {
        // Described by its length only: a secret never goes into a message.
        const got = secrets.map((s) => (typeof s === 'string' ? `a string of ${s.length} characters` : describe(s))).join(', ');
        throw new InvalidOptionError(
          ErrorCode.INVALID_OPTION,
          `option ${path} must be the cluster's shared secret, the same on every host: a string of at least ${MIN_SECRET_LENGTH} characters (e.g. from \`openssl rand -hex 32\`), or a list of them to rotate (the first signs, all verify); got ${got || 'an empty list'}`,
          { path },
        );
      }
      return [...(secrets as string[])];
    },
  },
  grants: group(GRANT_OPTIONS, {
    doc: "the host resources this host gives functions it fetches from the cluster's registry (`E_CLUSTER_GRANT` for more)",
    defaultDoc: 'none',
  }),
  hostId: {
    type: 'string',
    doc: "this host's id in the cluster",
    defaultFrom: () => `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
    defaultDoc: 'hostname-pid-random',
    range: '1 – 64 letters, digits and `_ . : -`',
    check(value, path) {
      if (typeof value !== 'string' || !CLUSTER_NAME.test(value)) fail(path, 'an id of 1 to 64 letters, digits and _ . : -', value);
      return value;
    },
  },
  heartbeatMs: int({ min: 10, max: 60_000, default: 500, doc: 'how often a host says it is alive, in milliseconds' }),
  hostTimeoutMs: int({
    min: (ctx) => 2 * (ctx.resolved['heartbeatMs'] as number),
    max: MAX_TIMEOUT_MS,
    default: (ctx) => Math.max(3000, 2 * (ctx.resolved['heartbeatMs'] as number)),
    defaultDoc: '3000 (at least 2 × `heartbeatMs`)',
    range: `2 × \`heartbeatMs\` – ${formatNumber(MAX_TIMEOUT_MS)}`,
    doc: 'a host without a heartbeat this long is dead, and its calls are claimed by others; in milliseconds',
  }),
  capacity: int({
    min: 0,
    max: 1_000_000,
    default: (ctx) => 4 * (ctx.parent!.resolved['workers'] as number),
    defaultDoc: '4 × `workers`',
    doc: 'calls this host runs at once before it routes more through Redis; 0: this host only sends calls',
  }),
  idempotencyTtlMs: int({
    min: 1000,
    max: MAX_TIMEOUT_MS,
    default: 3_600_000,
    defaultDoc: '3 600 000 (1 h)',
    doc: 'how long a result stays recorded under its idempotency key, in milliseconds',
  }),
  partitions: int({
    min: 0,
    max: 256,
    default: 0,
    defaultDoc: '0: from the Redis topology (one per master of a Redis Cluster, 1 on a single Redis)',
    doc: "work streams the cluster's calls are spread over, each under its own hash tag, so a Redis Cluster spreads one cluster's work over its masters; every host reads all of them. A cluster has one count: the first host to join stores its own, later ones take it (to change it, stop every host and delete the key `nuvola:cl:{<name>}:partitions`)",
  }),
};

const REDIS_TARGET = 'a redis:// or rediss:// URL, { url, tls?, username?, password? } or { cluster: [urls], … }';

const RUNTIME_SCHEMA = {
  workers: int({
    min: 1,
    max: 128,
    default: Math.max(1, Math.min(8, availableParallelism())),
    defaultDoc: "the machine's available parallelism, at most 8",
    doc: 'worker threads in the pool',
  }),
  maxInputBytes: int({
    bytes: true,
    min: 0,
    max: GiB,
    default: 16 * MiB,
    doc: 'largest input `invoke` accepts, in bytes (`E_INPUT_TOO_LARGE`)',
  }),
  maxOutputBytes: int({
    bytes: true,
    min: 0,
    max: GiB,
    default: 16 * MiB,
    doc: 'largest output a guest may produce, in bytes; more traps the guest (`E_OUTPUT_TOO_LARGE`)',
  }),
  maxModuleBytes: int({
    bytes: true,
    min: 8,
    max: GiB,
    default: 64 * MiB,
    doc: 'largest module `register` accepts, in bytes (`E_MODULE_TOO_LARGE`)',
  }),
  maxIdleInstances: int({ min: 0, max: 4096, default: 8, doc: 'idle instances kept warm per function per worker' }),
  idleTimeoutMs: int({
    min: 1,
    max: MAX_TIMEOUT_MS,
    default: 60_000,
    doc:
      'scale to zero: an instance idle this long is released, and so is a worker with nothing to do for this long (down to ' +
      '`minWorkers`); the next call restores an instance from the snapshot (and starts a worker) again. In milliseconds',
  }),
  memoryPoolSize: int({
    min: 0,
    max: 4096,
    default: 8,
    doc:
      'memories of retired instances (those that did not fit among the idle ones) kept per function per worker, reset to the ' +
      'snapshot, so that a later restore neither allocates a memory nor first-touches its pages — the costly part of a restore ' +
      "(like wasmtime's pooling allocator). They expire with `idleTimeoutMs` and count towards `maxInstances`; 0 turns recycling off",
  }),
  minWorkers: int({
    min: 0,
    max: 128,
    default: 0,
    doc: 'workers kept running however idle (0: a runtime with no traffic holds no thread)',
  }),
  maxInstances: int({
    min: 1,
    max: 1_000_000,
    default: 15_000,
    doc:
      "most Wasm memories the runtime holds at once: its live instances' (idle, running or suspended) and its spare memories " +
      '(see `memoryPoolSize`). V8 gives a process about 16k; a call that needs one more fails with `E_INSTANCE_LIMIT`',
  }),
  maxLogBytes: int({
    bytes: true,
    min: 0,
    max: GiB,
    default: 64 * KiB,
    doc: 'log bytes one invocation may write; the rest is dropped and the last line says so',
  }),
  maxMessageBytes: int({
    bytes: true,
    min: 0,
    max: GiB,
    default: 64 * MiB,
    doc: 'largest message a rank may send to another (`comm.send`), in bytes (`E_MESSAGE_TOO_LARGE`)',
  }),
  maxQueuedMessageBytes: int({
    bytes: true,
    min: 0,
    max: GiB,
    default: 16 * MiB,
    doc:
      'bytes of messages sent to one rank and not yet received by it: a send that would queue more fails with `E_QUEUE_FULL` ' +
      '(a send to a rank with nothing queued is always taken, so one message up to `maxMessageBytes` still passes)',
  }),
  maxQueue: int({
    min: 0,
    max: 1_000_000_000,
    infinite: true,
    default: Infinity,
    defaultDoc: 'no limit (`Infinity`)',
    doc:
      "calls `invoke` accepts that have not started yet (sent to a busy worker, or waiting for their function's " +
      "`maxConcurrency`): one more is refused at once with `E_QUEUE_FULL`, as piscina's `maxQueue`, so an overloaded service " +
      'sheds load instead of piling up calls that will time out. Chained calls and groups are not counted against it',
  }),
  maxChainedOutputBytes: int({
    bytes: true,
    min: 0,
    max: GiB,
    default: 64 * MiB,
    doc:
      "bytes of chained calls' outputs one invocation may hold (it holds them until it returns): a callee's output that would " +
      'go over fails that call in the caller with `E_CHAIN_OUTPUT_LIMIT`',
  }),
  idleSpinMicros: int({
    min: 0,
    max: 10_000,
    default: 100,
    doc:
      'how long an idle worker spins, in microseconds, watching for the next call before it blocks — only while the wake-ups ' +
      'it measures average over 25 µs (an idle VM), where it lowers one-at-a-time latency ~3×; it costs up to that much CPU per batch. 0 turns it off',
  }),
  logger: {
    type: '(entry: LogEntry) => void',
    doc: "receives guest `log` lines and the runtime's warnings",
    default: (entry: LogEntry): void => {
      process.stderr.write(`[${entry.function}] ${entry.message}\n`);
    },
    defaultDoc: 'written to stderr',
    check(value, path) {
      if (typeof value !== 'function') fail(path, 'a function', value);
      return value;
    },
  },
  redis: {
    type: 'RedisTarget',
    doc:
      'the global state tier: a Redis URL (`redis://user:password@host:port/db`, `rediss://` for TLS), ' +
      '`{ url, tls, username, password }`, or a Redis Cluster: `{ cluster: [seed node URLs], tls?, username?, password? }`',
    default: undefined,
    defaultDoc: 'none: an in-process tier that serves this process only (a log line says so)',
    check(value, path) {
      if (isRedisUrl(value)) return value;
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return fail(path, REDIS_TARGET, value);
      const o = checkObject(value, path, ['url', 'cluster', 'tls', 'username', 'password']);
      if (o['cluster'] !== undefined) {
        const nodes = o['cluster'];
        if (o['url'] !== undefined) fail(`${path}.url`, 'absent with options.redis.cluster (the seed nodes say where)', o['url']);
        if (!Array.isArray(nodes) || nodes.length === 0 || !nodes.every(isRedisUrl)) {
          fail(`${path}.cluster`, 'a non-empty array of redis:// URLs of Redis Cluster nodes', nodes);
        }
      } else if (!isRedisUrl(o['url'])) fail(`${path}.url`, 'a redis:// or rediss:// URL', o['url']);
      for (const field of ['username', 'password'] as const) {
        if (o[field] !== undefined && typeof o[field] !== 'string') fail(`${path}.${field}`, 'a string', o[field]);
      }
      if (o['tls'] !== undefined && (o['tls'] === null || typeof o['tls'] !== 'object'))
        fail(`${path}.tls`, 'an object of TLS options', o['tls']);
      return value as RedisTarget;
    },
  },
  // After `workers` (the default `capacity`) and `redis` (required), which it reads.
  cluster: group(CLUSTER_OPTIONS, {
    doc:
      'cluster mode (needs `redis`): functions registered on any host run on all; a host routes calls through Redis when it ' +
      'runs `capacity` calls already (docs/guides/many-hosts.md)',
    default: undefined,
    defaultDoc: 'none: a single host',
    finish(resolved, path, ctx): ClusterSettings {
      if (ctx.resolved['redis'] === undefined)
        fail('options.redis', 'set in cluster mode (the hosts of a cluster meet in Redis)', undefined);
      const { secret, ...rest } = resolved;
      return { ...rest, secrets: secret } as unknown as ClusterSettings;
    },
  }),
  kernels: group(KERNEL_OPTIONS, {
    doc: 'GPU kernels for guests (`kernels.*` in the SDK) and `rt.kernels`',
  }),
  stateLeaseMs: int({
    min: 10,
    max: MAX_TIMEOUT_MS,
    default: 30_000,
    doc: 'how long a global state lock lasts unless released, in milliseconds',
  }),
  regionBytes: int({
    min: 64 * KiB,
    // A wasm32 memory's most: 65 535 pages (state/region-arena.ts).
    max: 4 * GiB - 64 * KiB,
    default: GiB,
    bytes: true,
    range: '64 KiB – 4 GiB − 64 KiB',
    doc:
      'the most the region arena may hold, in bytes: the one shared memory per host where mapped state keys (guest regions, ' +
      '`rt.state.view`) live. Reserved as virtual address space only; pages are used as keys are mapped',
  }),
  componentCacheDir: {
    type: 'string | null',
    doc:
      'where transpiled WebAssembly components are cached by content hash, so that registering the same component again ' +
      '(here or in a later process) skips jco. Its contents run as code in the workers: a directory that is not this ' +
      "user's alone (mode 0700 or stricter) is not used. `null`: in memory only",
    default: join(tmpdir(), `nuvola-components-${process.getuid?.() ?? 'user'}`) as string | null,
    defaultDoc: "`nuvola-components-<uid>` in the system's temporary directory",
    check(value, path) {
      if (value === null) return null;
      if (typeof value !== 'string' || value === '') fail(path, 'a directory path or null', value);
      return resolve(value);
    },
  },
} satisfies Schema;

// ---- register -------------------------------------------------------------------------------

const WASI_OPTIONS: Schema = {
  args: {
    type: 'string[]',
    doc: "argv[1..]; argv[0] is the function's name",
    default: [],
    defaultDoc: 'none',
    check(value, path) {
      if (!Array.isArray(value) || !value.every(plain)) fail(path, 'an array of strings without NUL', value);
      return [...(value as string[])];
    },
  },
  env: {
    type: 'Record<string, string>',
    doc: 'its environment',
    default: {},
    defaultDoc: 'empty',
    check(value, path) {
      const o = checkObject(value, path, Object.keys((value as object | undefined) ?? {}));
      for (const [name, v] of Object.entries(o)) {
        if (name === '' || name.includes('=') || !plain(name) || !plain(v))
          fail(`${path}.${name}`, 'a string (and a name without = or NUL)', v);
      }
      return o;
    },
  },
  dirs: {
    type: '{ host: string; guest?: string; writable?: boolean }[]',
    doc:
      'the only host directories it may touch, seen by the guest at `guest` (default: the same path as on the host), ' +
      'read-only unless `writable`. Linux only: reached through directory descriptors',
    default: [],
    defaultDoc: 'no file system',
    check(value, path): WasiDir[] {
      if (!Array.isArray(value)) fail(path, 'an array of { host, guest?, writable? }', value);
      if (value.length > 0 && process.platform !== 'linux') {
        // Grants are reached only through directory descriptors and /proc/self/fd (capabilities/wasi/paths.ts).
        throw new InvalidOptionError(
          ErrorCode.INVALID_OPTION,
          `option ${path}: granting directories to a WASI guest needs Linux (/proc/self/fd); this is ${process.platform}: leave dirs out`,
          { path },
        );
      }
      return value.map((d: unknown, i): WasiDir => {
        const at = `${path}[${i}]`;
        const entry = checkObject(d === undefined ? null : d, at, ['host', 'guest', 'writable']);
        const host = entry['host'];
        if (!plain(host) || host === '') fail(`${at}.host`, 'the path of a directory', host);
        const real = realDirectory(host, `${at}.host`);
        const guest = entry['guest'] ?? host;
        if (!plain(guest) || guest === '') fail(`${at}.guest`, 'a path', guest);
        const writable = entry['writable'] ?? false;
        if (typeof writable !== 'boolean') fail(`${at}.writable`, 'a boolean', writable);
        return { host: real, guest, writable };
      });
    },
  },
};

const STATE_QUOTA_OPTIONS: Schema = {
  bytes: int({
    bytes: true,
    min: 0,
    max: 2 ** 53 - 1,
    default: 256 * MiB,
    doc: 'the room of the local values the function allocated, plus what it appended through this host until cleared or deleted',
  }),
  keys: int({ min: 0, max: 2 ** 31 - 1, default: 65_536, doc: 'local keys the function allocated' }),
};

const FUNCTION_SCHEMA = {
  timeoutMs: int({
    min: 1,
    max: MAX_TIMEOUT_MS,
    default: 30_000,
    doc: 'longest an invocation may run, in milliseconds, before it fails with `E_TIMEOUT`; at `register`, it bounds the boot and each restore',
  }),
  memoryLimitPages: int({
    min: 1,
    max: MAX_PAGES,
    default: 1024,
    defaultDoc: '1024 (64 MiB)',
    doc: 'most linear memory an instance may have, in 64 KiB pages (`E_MEMORY_LIMIT`)',
  }),
  stateKeys: {
    type: 'string[]',
    doc: 'state keys the function may touch: exact names, or prefixes ending in `*`. Any other key fails with `E_STATE_DENIED`',
    default: undefined as string[] | undefined,
    defaultDoc: 'no restriction',
    check(value, path) {
      if (!Array.isArray(value) || value.some((k) => typeof k !== 'string' || k.length === 0)) {
        fail(path, 'an array of non-empty key names or prefixes ending in *', value);
      }
      return [...(value as string[])];
    },
  },
  callees: {
    type: 'string[]',
    doc: "functions the guest may call with `chain.call` (exact names); a call to any other traps with `E_CHAIN_DENIED`. A callee runs under its own `stateKeys`, not the caller's: give a function with narrow `stateKeys` a `callees` list too, or it reaches further through callees with wider access",
    default: undefined as string[] | undefined,
    defaultDoc: 'any registered function',
    check(value, path) {
      if (!Array.isArray(value) || value.some((n) => typeof n !== 'string' || !FUNCTION_NAME.test(n))) {
        fail(path, 'an array of function names (1 to 128 characters of letters, digits and _ . : / -)', value);
      }
      return [...(value as string[])];
    },
  },
  reuse: oneOf(
    ['reset', 'keep'] as const,
    'reset',
    "what a warm instance keeps between calls. `'reset'`: after every call the instance goes back to the snapshot taken after `init()` — memory and globals — so no call sees what another wrote. `'keep'`: nothing is reset; a call may see globals and heap left by earlier calls on the same instance (which instance serves a call is not specified). Use `'keep'` only for caches that are safe to share between all callers",
  ),
  abi: oneOf(
    ['auto', 'nuvola', 'wasi', 'component'] as const,
    'auto',
    "the interface the module speaks. `'nuvola'`: the guest SDK's ABI (exports `main`). `'wasi'`: a WASI preview 1 command (exports `_start`): the input is its stdin, its stdout the output, its stderr the log, its exit code the return code. `'component'`: a WebAssembly component of the world in `wit/nuvola-function.wit`. `'auto'`: a component by its header, a WASI command when it exports `_start` and not `main`, else the SDK's ABI (`describe(name).abi` says which)",
  ),
  wasi: group(WASI_OPTIONS, {
    doc: 'what the WASI imports give the guest (WASI commands, and SDK guests that import WASI)',
    default: NO_WASI,
    defaultDoc: 'no arguments, an empty environment, no file system',
    finish: (r): WasiConfig => ({
      args: r['args'] as string[],
      env: Object.entries(r['env'] as Record<string, string>).map(([name, v]) => `${name}=${v}`),
      dirs: r['dirs'] as WasiDir[],
    }),
  }),
  maxConcurrency: int({
    min: 1,
    max: 1_000_000,
    default: (ctx) => Math.max(1, Math.floor((ctx.parent!.resolved['maxInstances'] as number) / 2)),
    defaultDoc: 'half of `maxInstances` (at least 1)',
    doc: 'most calls of this function running at once (instances it holds for calls, group ranks and chained calls included). Calls over it wait on the main thread, in order, for one to end — or fail with `E_TIMEOUT` when their timeout passes first — so a recursive fan-out cannot take every instance from other functions',
  }),
  stateQuota: group(STATE_QUOTA_OPTIONS, {
    doc: 'how much of the local state tier the function may hold. A key counts against the function whose call last created or grew its local allocation (a lookup or pull of a global value allocates too); values the embedding service writes count against nobody. A write, append, pull or lookup over it fails with `E_STATE_QUOTA` and changes nothing',
  }),
  cpuLimitMs: int({
    min: 1,
    max: MAX_TIMEOUT_MS,
    default: undefined,
    defaultDoc: 'no limit',
    hint: 'leave it out for no CPU limit',
    doc: "most CPU time a call may use, in milliseconds: the worker thread's CPU in the call's slices, not time suspended in host calls (like Cloudflare's CPU limit). A call over it is stopped at its next check with `E_CPU_LIMIT`; its worker goes on. Enforced within a sweep (5 ms) of the limit, from an upper bound (docs/guides/metering.md). `register` refuses it for code the rewrite could not instrument",
  }),
  fuel: int({
    min: 1,
    max: Number.MAX_SAFE_INTEGER,
    default: undefined,
    defaultDoc: 'none',
    hint: 'leave it out for no fuel budget',
    doc: "fuel a call may consume: one unit per function entry and loop iteration of the guest's code, counted the same on every machine. A call that runs out fails with `E_FUEL_EXHAUSTED`; `usage.fuel` reports what each call consumed. The counter is added to the code only when this is set. `register` refuses it for code the rewrite could not instrument",
  }),
} satisfies Schema;

// ---- invoke, invokeChain, invokeGroup ----------------------------------------------------------

const callTimeout = (what: string): OptionSpec =>
  int({
    min: 1,
    max: MAX_TIMEOUT_MS,
    default: (ctx) => ctx.parent?.resolved['timeoutMs'] as number | undefined,
    defaultDoc: `${what}'s \`timeoutMs\``,
    doc: `overrides ${what}'s \`timeoutMs\` (in milliseconds)`,
  });

const INVOKE_SCHEMA = {
  timeoutMs: callTimeout('the function'),
  trace: flag(
    false,
    "record the call tree: the result's `calls` lists this call and every call it made with `chain.call`, transitively (id, parent, function, worker, timing, outcome)",
  ),
  idempotencyKey: {
    type: 'string',
    doc: 'cluster mode only: a key naming this invocation. The first completion under a key is recorded (for `cluster.idempotencyTtlMs`); a call with a key that completed answers with that result without running again, and one whose key is running on another host waits for it. Use it to retry after a timeout or a lost host without applying twice',
    range: '1 – 256 characters',
    default: undefined,
    defaultDoc: 'none',
    check(value, path) {
      if (typeof value !== 'string' || value.length === 0 || value.length > 256) fail(path, 'a string of 1 to 256 characters', value);
      return value;
    },
  },
  stateKey: {
    type: 'string',
    doc: "the state key this call mostly works on: a placement hint. In cluster mode the call runs on the key's home host (each key hashes to one of the live hosts that take calls, so all calls naming it meet there and find it in that host's local tier) — unless that host was full at its last heartbeat: then on this host if its local tier holds the key and it has room, else wherever there is room. On a single host it changes nothing. It grants no access: `stateKeys` still applies",
    range: `a state key: 1 – ${MAX_STATE_KEY_BYTES} bytes of UTF-8`,
    default: undefined,
    defaultDoc: 'none',
    check(value, path) {
      if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > MAX_STATE_KEY_BYTES) {
        fail(path, `a state key: a string of 1 to ${MAX_STATE_KEY_BYTES} bytes of UTF-8`, value);
      }
      return value;
    },
  },
  signal: {
    type: 'AbortSignal',
    doc: "cancels the call when aborted: one still waiting never starts, one suspended in a host call is stopped there, one running on its worker's CPU is interrupted at its next check (as at its deadline); the promise rejects with `E_CANCELLED` (`details.reason`). A call that has already finished is answered as usual. In cluster mode a call sent to another host is only abandoned: the promise rejects, the other host may still run it",
    default: undefined,
    defaultDoc: 'none',
    check(value, path) {
      if (!(value instanceof AbortSignal)) fail(path, 'an AbortSignal', value);
      return value;
    },
  },
} satisfies Schema;

const CHAIN_SCHEMA = {
  timeoutMs: callTimeout('each stage'),
  prewarm: flag(true, "warm the later stages' instances on the worker that runs the first, in the gaps between stages"),
  signal: {
    ...INVOKE_SCHEMA.signal,
    doc: 'cancels the stage running when aborted (as `invoke(…, { signal })`); no later stage starts',
  },
} satisfies Schema;

const GROUP_SCHEMA = {
  timeoutMs: callTimeout('each rank'),
  placement: oneOf(
    ['spread', 'pack', 'hosts'] as const,
    'spread',
    "where the ranks run. `'spread'`: over the workers, for ranks that compute in parallel. `'pack'`: all on one worker, where messages never leave the thread — for ranks that mostly talk (a 1 KiB round trip then costs ~7 µs instead of ~60–120 µs). `'hosts'` (cluster mode): split over the cluster's hosts that take calls, in contiguous blocks of ranks; messages between hosts go through Redis, with the same semantics (per-sender order, the first failing rank ends the group everywhere)",
  ),
} satisfies Schema;

/** Every entry point's options, for the generated interfaces and docs: the interface, where it is used, its schema. */
export const OPTION_SCHEMAS: readonly { name: string; of: string; schema: Schema }[] = [
  { name: 'RuntimeOptions', of: '`createRuntime(options)`', schema: RUNTIME_SCHEMA },
  { name: 'FunctionOptions', of: '`rt.register(name, wasm, options)`', schema: FUNCTION_SCHEMA },
  { name: 'InvokeOptions', of: '`rt.invoke(name, input, options)`', schema: INVOKE_SCHEMA },
  { name: 'ChainOptions', of: '`rt.invokeChain(names, input, options)`', schema: CHAIN_SCHEMA },
  { name: 'GroupOptions', of: '`rt.invokeGroup(name, size, input, options)`', schema: GROUP_SCHEMA },
];

// ---- resolved options -------------------------------------------------------------------------

export type ResolvedRuntimeOptions = Required<Omit<RuntimeOptions, 'redis' | 'componentCacheDir' | 'cluster' | 'kernels'>> & {
  redis: RedisTarget | undefined;
  componentCacheDir: string | null;
  cluster: ClusterSettings | undefined;
  kernels: { mode: 'auto' | 'gpu' | 'cpu'; maxKernelMs: number };
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

/** The defaults of `createRuntime`'s options (`cluster`: none). */
export const RUNTIME_DEFAULTS = Object.freeze(defaultsOf(RUNTIME_SCHEMA)) as Readonly<
  Omit<ResolvedRuntimeOptions, 'cluster'> & { cluster: RuntimeOptions['cluster'] }
>;
/** The defaults of `register`'s options (`maxConcurrency` undefined: half of the runtime's `maxInstances`, at least 1; `cpuLimitMs`, `fuel` undefined: none). */
export const FUNCTION_DEFAULTS = Object.freeze(defaultsOf(FUNCTION_SCHEMA)) as Readonly<
  Omit<ResolvedFunctionOptions, 'maxConcurrency'> & { maxConcurrency: number | undefined }
>;

export function resolveRuntimeOptions(options: unknown): ResolvedRuntimeOptions {
  return resolveWith(RUNTIME_SCHEMA, options, 'options') as ResolvedRuntimeOptions;
}

/** `maxInstances`: the runtime's, which sets the default `maxConcurrency`. */
export function resolveFunctionOptions(options: unknown, maxInstances: number = RUNTIME_DEFAULTS.maxInstances): ResolvedFunctionOptions {
  return resolveWith(FUNCTION_SCHEMA, options, 'options', { resolved: { maxInstances }, parent: undefined }) as ResolvedFunctionOptions;
}

/** `fn`: the function called, whose `timeoutMs` is the default. */
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
  return resolveWith(INVOKE_SCHEMA, options, 'options', { resolved: { timeoutMs: fn.timeoutMs }, parent: undefined }) as ReturnType<
    typeof resolveInvokeOptions
  >;
}

/** `timeoutMs` undefined: each stage's own. */
export function resolveChainOptions(options: unknown): {
  timeoutMs: number | undefined;
  prewarm: boolean;
  signal: AbortSignal | undefined;
} {
  return resolveWith(CHAIN_SCHEMA, options, 'options') as ReturnType<typeof resolveChainOptions>;
}

/** `timeoutMs` undefined: each rank's function's own. */
export function resolveGroupOptions(options: unknown): { timeoutMs: number | undefined; placement: 'spread' | 'pack' | 'hosts' } {
  return resolveWith(GROUP_SCHEMA, options, 'options') as ReturnType<typeof resolveGroupOptions>;
}
