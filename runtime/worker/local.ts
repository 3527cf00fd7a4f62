/**
 * Any thread, for nuvola's own tests and benchmarks: the instance layer without a pool — an
 * environment like a worker's, and a function booted and snapshotted on the current thread,
 * so instances can be restored, called, reset and inspected directly.
 */
import { checkModule } from '../module-check.js';
import { NO_WASI } from '../capabilities/wasi/config.js';
import { loadCapabilities } from '../capabilities/guest.js';
import { localFileBudget, WASI_MODULE } from '../capabilities/wasi/guest.js';
import type { FunctionSpec } from '../protocol.js';
import { DirtyMap } from './dirty-map.js';
import { newInterrupt } from './interrupt.js';
import { GuestInstance, restoredState, workerImports, type InstanceEnv } from './instance.js';

await loadCapabilities();

/** A worker-like environment; `live` counts the memories its instances hold. */
export function localEnv(): InstanceEnv & { live: number } {
  const env = {
    live: 0,
    limits: { maxOutputBytes: 1 << 20, maxLogBytes: 1 << 16 },
    dirty: new DirtyMap(),
    log: () => {},
    // No worker here: state, chaining, comm and kernels are not available; WASI counts this env's own files.
    host: workerImports({ suspended: () => {}, resumed: () => {} }, { [WASI_MODULE]: localFileBudget() }),
    admit: () => void env.live++,
    onDispose: () => void env.live--,
    interrupt: newInterrupt(),
  };
  return env;
}

/**
 * Checks, rewrites, boots and snapshots `wasm` on this thread; returns the spec (with its
 * snapshot) and the environment to restore its instances in.
 */
export async function snapshotHere(
  name: string,
  wasm: Uint8Array,
  env: InstanceEnv,
  memoryLimitPages = 1024,
  rewrite: { interruptChecks?: boolean; fuel?: boolean } = {},
): Promise<{ spec: FunctionSpec; env: InstanceEnv }> {
  const checked = await checkModule(name, wasm, memoryLimitPages, 'auto', rewrite);
  const spec: FunctionSpec = {
    name,
    module: checked.module,
    layout: checked.layout,
    reuse: 'reset',
    suspends: checked.suspends,
    memoryLimitPages,
    stateKeys: undefined,
    callees: undefined,
    timeoutMs: 1000,
    abi: checked.abi,
    wasi: NO_WASI,
    concurrency: { limit: 1_000_000, running: new SharedArrayBuffer(4) },
  };
  // Counted, never exhausted.
  if (rewrite.fuel === true) spec.fuel = Number.MAX_SAFE_INTEGER;
  const boot = GuestInstance.boot(spec, checked.segments, env);
  spec.snapshot = boot.capture();
  boot.dispose();
  return { spec, env: Object.assign(env, { restored: restoredState(spec, env.dirty) }) };
}
