/**
 * Main thread. The composition root: `createRuntime()` turns the options into the parts of a
 * runtime (the global state tier, Redis or in-process; the state store; the pool of workers
 * with the capabilities' main-thread services; the kernels, made on first use; the cluster
 * membership) and hands them to the {@link Runtime}.
 */
import { ErrorCode, InvalidOptionError } from './errors.js';
import { resolveRuntimeOptions, type ResolvedFunctionOptions, type RuntimeOptions } from './options.js';
import { Pool } from './pool.js';
import type { GlobalTier } from '../state/global-tier.js';
import { MemoryTier } from '../state/memory-tier.js';
import { RedisTier } from '../state/redis-tier.js';
import { StateStore } from '../state/store.js';
import { stateService } from './capabilities/state/service.js';
import { kernelsService } from './capabilities/kernels/service.js';
import { Kernels } from '../kernels/index.js';
import { Runtime } from './runtime.js';

/** How long createRuntime waits for Redis before going on without it (it reconnects by itself), in ms. */
const REDIS_CONNECT_WAIT_MS = 2000;

let memoryTierNoticed = false;

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
  const store = new StateStore(global, {
    leaseMs: resolved.stateLeaseMs,
    quota: (owner) => registry.get(owner)?.stateQuota,
    regionBytes: resolved.regionBytes,
  });
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
      region: store.regionMemory(),
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
