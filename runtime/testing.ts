/**
 * Main thread. `nuvola/testing`: {@link testGuest}, for an application's own unit tests of its
 * guests (any test runner), and at the end, hooks that nuvola's own tests use.
 */
import { buildGuest, type BuildOptions } from './build.js';
import type { HostState } from './host-state.js';
import type { FunctionOptions, InvokeOptions, LogEntry, RuntimeOptions } from './options.js';
import { createRuntime } from './create-runtime.js';
import { POOL, type Runtime } from './runtime.js';
import type { InvokeInput, InvokeResult } from './index.js';

/** One guest function on a runtime of its own, for tests. */
export interface GuestUnderTest {
  /** The name it is registered under (`"guest"`). */
  readonly name: string;
  /** Calls it; rejects with the same coded errors `rt.invoke` gives. */
  invoke(input?: InvokeInput, options?: InvokeOptions): Promise<InvokeResult>;
  /** Calls it and decodes its output as UTF-8. */
  text(input?: InvokeInput, options?: InvokeOptions): Promise<string>;
  /** Every line the guest logged so far, in order (the runtime's own messages are left out). */
  readonly logs: string[];
  /** The runtime's state (`rt.state`): seed keys before a call, check them after. */
  readonly state: HostState;
  /** The runtime underneath, for anything else (registering the functions it chains to, say). */
  readonly runtime: Runtime;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export interface TestGuestOptions {
  /** How to register it (timeoutMs, stateKeys, wasi…). */
  function?: FunctionOptions;
  /** The runtime's options; default one worker and no Redis, so calls run in order on one thread. */
  runtime?: RuntimeOptions;
  /** How to build a `.ts` source (default: optimizeLevel 0, so frames and lines match the source). */
  build?: BuildOptions;
}

/**
 * Builds (when given an AssemblyScript `.ts` file) and registers `guest` on a fresh one-worker
 * runtime and returns a handle to call it:
 *
 * ```ts
 * import { testGuest } from 'nuvola/testing';
 * await using hello = await testGuest('guests/hello.ts');
 * assert.equal(await hello.text('you'), 'Hello you');
 * ```
 */
export async function testGuest(guest: string | URL | Uint8Array, options: TestGuestOptions = {}): Promise<GuestUnderTest> {
  const logs: string[] = [];
  const userLogger = options.runtime?.logger;
  const runtime = await createRuntime({
    workers: 1,
    ...options.runtime,
    logger: (entry: LogEntry) => {
      if (entry.function !== 'nuvola') logs.push(entry.message);
      userLogger?.(entry);
    },
  });
  try {
    const path = guest instanceof URL ? guest.pathname : guest;
    const bytes = typeof path === 'string' && path.endsWith('.ts') ? await buildGuest(path, { optimizeLevel: 0, ...options.build }) : guest;
    await runtime.register('guest', bytes, options.function);
  } catch (err) {
    await runtime.close();
    throw err;
  }
  const close = (): Promise<void> => runtime.close();
  return {
    name: 'guest',
    invoke: (input, invokeOptions) => runtime.invoke('guest', input, invokeOptions),
    text: async (input, invokeOptions) => new TextDecoder().decode((await runtime.invoke('guest', input, invokeOptions)).output),
    logs,
    state: runtime.state,
    runtime,
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** @internal For nuvola's own tests: stops worker `index` abruptly, as a crash would. */
export function crashWorker(rt: Runtime, index: number): void {
  rt[POOL].crashWorker(index);
}

/** @internal For nuvola's own tests: stops the deadline watchdog thread (the main thread's timer takes over). */
export async function stopWatchdog(rt: Runtime): Promise<void> {
  await rt[POOL].watchdog.close();
}

/** @internal For nuvola's own tests: `listener` gets the number of outcomes in each results message of worker `index`. */
export function onResultBatch(rt: Runtime, index: number, listener: (outcomes: number) => void): void {
  rt[POOL].onResultBatch(index, listener);
}

/** @internal For nuvola's own tests: resolves once worker `index` is inside a registration (creating its warm instance). */
export async function whenRegistering(rt: Runtime, index: number): Promise<void> {
  while (!rt[POOL].isRegistering(index)) await new Promise((resolve) => setTimeout(resolve, 1));
}

/** @internal For nuvola's own tests: resolves once `predicate` holds, checking every millisecond. */
export async function until(predicate: () => boolean): Promise<void> {
  while (!predicate()) await new Promise((resolve) => setTimeout(resolve, 1));
}
