/**
 * Worker thread. One Instance of a guest function: its memory, its host-import context, and
 * how to run its entry point. Instances whose module can suspend run `main` through
 * `WebAssembly.promising`; the others are called directly, which is cheaper and lets the
 * instance go back to the warm pool the moment `main` returns.
 */
import * as abi from '../../guest/sdk/nuvola/abi.js';
import { ErrorCode, GuestError, LimitError, ModuleError, NuvolaError } from '../errors.js';
import type { GuestContext } from '../host/context.js';
import { buildImports } from '../host/imports.js';
import { newGuestState, releaseState } from '../host/state.js';
import type { FunctionSpec } from '../protocol.js';
import { BLOCK_BYTES, BLOCK_SHIFT } from '../snapshot/code.js';
import {
  EXPORT_DIRTY_BASE,
  EXPORT_GLOBAL,
  EXPORT_START_SECTION,
  IMPORT_DIRTY,
  IMPORT_MEMORY,
  SNAPSHOT_MODULE,
  type DataSegment,
  type Snapshot,
} from '../snapshot/layout.js';
import type { DirtyMap } from './dirty-map.js';

export interface SuspendHooks {
  /** Called when the guest suspends in a host import. */
  suspended(ctx: GuestContext): void;
  /** Called right before the guest resumes. */
  resumed(ctx: GuestContext): void;
}

export interface InstanceLimits {
  maxOutputBytes: number;
  /** Log bytes allowed per invocation (and for start-up together). */
  maxLogBytes: number;
}

/** What every instance on a worker shares. */
export interface InstanceEnv {
  limits: InstanceLimits;
  dirty: DirtyMap;
  log: (message: string) => void;
  hooks: SuspendHooks;
  /** Called before an instance is created; throws E_INSTANCE_LIMIT when the process is full. */
  admit: (fn: string) => void;
  /** Called once for every admitted instance when it is disposed or failed to come up. */
  onDispose: () => void;
}

const PAGE = 65536;

export class GuestInstance {
  readonly ctx: GuestContext;
  readonly spec: FunctionSpec;
  private readonly env: InstanceEnv;
  private readonly memory: WebAssembly.Memory;
  private readonly entry: () => number | Promise<number>;
  private readonly exports: WebAssembly.Exports;
  private readonly globals: WebAssembly.Global[];
  private readonly dirtyBase: number;
  private readonly dirtyBlocks: number;
  private disposed = false;

  /**
   * The one instance of a registration that runs start-up code: the module's data segments,
   * its start function, AssemblyScript's `_initialize` and the guest's `init()`. Its state is
   * then {@link capture}d as the function's snapshot.
   */
  static boot(spec: FunctionSpec, segments: DataSegment[], env: InstanceEnv): GuestInstance {
    const { layout } = spec;
    const instance = new GuestInstance(spec, newMemory(spec, layout.initialPages, env), env);
    try {
      const target = new Uint8Array(instance.memory.buffer);
      for (const segment of segments) {
        if (segment.offset + segment.bytes.byteLength > target.byteLength) {
          throw new ModuleError(
            ErrorCode.INSTANTIATE_FAILED,
            `function '${spec.name}' could not be instantiated: a data segment (offset ${segment.offset}, ${segment.bytes.byteLength} bytes) lies outside its initial memory of ${target.byteLength} bytes`,
            { function: spec.name },
          );
        }
        target.set(segment.bytes, segment.offset);
      }
      const exports = instance.exports;
      if (layout.hasStart) (exports[EXPORT_START_SECTION] as () => void)();
      if (typeof exports[abi.EXPORT_START] === 'function') (exports[abi.EXPORT_START] as () => void)();
      if (typeof exports[abi.EXPORT_INIT] === 'function') (exports[abi.EXPORT_INIT] as () => void)();
    } catch (err) {
      const error = err instanceof ModuleError ? err : instantiateError(spec.name, err, instance);
      instance.dispose();
      throw error;
    }
    return instance;
  }

  /** A new instance in the state of `spec.snapshot`, without running any guest code. */
  static restore(spec: FunctionSpec, env: InstanceEnv): GuestInstance {
    const snapshot = spec.snapshot!;
    const memory = newMemory(spec, snapshot.pages, env);
    const target = new Uint8Array(memory.buffer);
    const image = new Uint8Array(snapshot.image);
    const ranges = snapshot.ranges;
    for (let r = 0; r < ranges.length; r += 2) target.set(image.subarray(ranges[r]!, ranges[r + 1]!), ranges[r]!);
    const instance = new GuestInstance(spec, memory, env);
    instance.setGlobals(snapshot.globals);
    return instance;
  }

  private constructor(spec: FunctionSpec, memory: WebAssembly.Memory, env: InstanceEnv) {
    this.spec = spec;
    this.env = env;
    this.memory = memory;
    this.dirtyBlocks = (spec.layout.maximumPages * PAGE) >>> BLOCK_SHIFT;
    const dirtyBase = env.dirty.allocate(this.dirtyBlocks);
    this.dirtyBase = dirtyBase;
    this.ctx = {
      fn: spec.name,
      memory,
      input: EMPTY,
      output: undefined,
      maxOutputBytes: env.limits.maxOutputBytes,
      log: env.log,
      logBudget: env.limits.maxLogBytes,
      invocationId: 0,
      suspensions: 0,
      cancelled: false,
      cancelWaiters: new Set(),
      stateKeys: spec.stateKeys,
      deadline: 0,
      state: newGuestState(),
      written: (ptr, length) => env.dirty.mark(dirtyBase, ptr, length),
    };
    const imports = buildImports(this.ctx, env.hooks);
    imports[SNAPSHOT_MODULE] = { [IMPORT_MEMORY]: memory, [IMPORT_DIRTY]: env.dirty.memory };
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(spec.module, imports);
    } catch (err) {
      env.dirty.release(dirtyBase, this.dirtyBlocks);
      env.onDispose();
      throw instantiateError(spec.name, err);
    }
    this.exports = instance.exports;
    (this.exports[EXPORT_DIRTY_BASE] as WebAssembly.Global).value = dirtyBase;
    this.globals = spec.layout.globalTypes.map((_, k) => this.exports[`${EXPORT_GLOBAL}${k}`] as WebAssembly.Global);
    const main = this.exports[abi.EXPORT_MAIN] as () => number;
    this.entry = spec.suspends ? WebAssembly.promising(main) : main;
  }

  private setGlobals(values: readonly (number | bigint)[]): void {
    const globals = this.globals;
    for (let k = 0; k < globals.length; k++) globals[k]!.value = values[k];
  }

  /** The instance's memory image and mutable globals, as a snapshot every worker can restore. */
  capture(): Snapshot {
    const bytes = this.memory.buffer.byteLength;
    const image = new SharedArrayBuffer(bytes);
    const view = new Uint8Array(image);
    view.set(new Uint8Array(this.memory.buffer));
    const words = new Int32Array(image);
    const wordsPerBlock = BLOCK_BYTES / 4;
    const ranges: number[] = [];
    for (let block = 0; block < bytes / BLOCK_BYTES; block++) {
      let used = false;
      for (let w = block * wordsPerBlock, end = w + wordsPerBlock; w < end && !used; w++) used = words[w] !== 0;
      if (!used) continue;
      const start = block * BLOCK_BYTES;
      if (ranges.length > 0 && ranges[ranges.length - 1] === start) ranges[ranges.length - 1] = start + BLOCK_BYTES;
      else ranges.push(start, start + BLOCK_BYTES);
    }
    return { image, pages: bytes / PAGE, globals: this.globals.map((g) => g.value as number | bigint), ranges };
  }

  /**
   * Returns the instance to its function's snapshot after a call: the memory blocks the call
   * wrote and every mutable global. Returns false when that cannot be done in place (the call
   * grew the memory, or the module's writes are not tracked); the instance must then be disposed.
   */
  reset(): boolean {
    const snapshot = this.spec.snapshot!;
    const bytes = snapshot.pages * PAGE;
    if (!this.spec.layout.tracked || this.memory.buffer.byteLength !== bytes) return false;
    this.env.dirty.restore(this.dirtyBase, new Uint8Array(this.memory.buffer), new Uint8Array(snapshot.image), bytes);
    this.setGlobals(snapshot.globals);
    return true;
  }

  /** Gives back the instance's slice of the dirty map; the instance is not used again. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.env.dirty.release(this.dirtyBase, this.dirtyBlocks);
    this.env.onDispose();
  }

  /** Runs `main` once; returns its code, or a promise of it when the module can suspend. */
  call(input: Uint8Array, invocationId: number, deadline: number): number | Promise<number> {
    this.ctx.deadline = deadline;
    this.ctx.input = input;
    this.ctx.output = undefined;
    this.ctx.invocationId = invocationId;
    this.ctx.logBudget = this.env.limits.maxLogBytes;
    return this.entry();
  }

  /** Releases what a failed invocation held; the instance is not used again. */
  discard(): void {
    releaseState(this.ctx, false);
    this.dispose();
  }

  /** Stops a suspended invocation for good: waiting host calls return, and the guest traps before it could run again. */
  cancel(): void {
    this.discard();
    this.ctx.cancelled = true;
    for (const wake of [...this.ctx.cancelWaiters]) wake();
  }

  /** Takes the output of the finished call and clears the per-call context. */
  finish(): Uint8Array {
    releaseState(this.ctx, true);
    const output = this.ctx.output ?? new Uint8Array(0);
    this.ctx.input = EMPTY;
    this.ctx.output = undefined;
    this.ctx.invocationId = 0;
    return output;
  }

  /** Turns anything the guest threw into a coded error, recognising a hit memory limit. */
  classify(err: unknown): NuvolaError {
    if (err instanceof NuvolaError) return err;
    const fn = this.spec.name;
    const pages = (this.ctx.memory?.buffer.byteLength ?? 0) / abi.PAGE_SIZE;
    const message = err instanceof Error ? err.message : String(err);
    const frames = wasmFrames(err);
    // AssemblyScript's allocator first tries to double the memory, then to grow by what it
    // needs, and executes `unreachable` when both fail; the engine refuses any growth past the
    // cap set at register. So an `unreachable` with over half the cap in use is, in practice,
    // the allocator running out of room. (A guest's own `unreachable` at that size is
    // reported the same way; the trap text stays in the details.)
    if (err instanceof WebAssembly.RuntimeError && /unreachable/.test(message) && pages * 2 > this.spec.memoryLimitPages) {
      return new LimitError(
        ErrorCode.MEMORY_LIMIT,
        `function '${fn}' trapped (${message}) with its memory at memoryLimitPages=${this.spec.memoryLimitPages}; raise memoryLimitPages in register() if it needs more`,
        { function: fn, trap: message, pages, memoryLimitPages: this.spec.memoryLimitPages, frames },
      );
    }
    if (err instanceof WebAssembly.RuntimeError || err instanceof RangeError) {
      const trap = err instanceof RangeError ? 'call stack exhausted' : message;
      return new GuestError(ErrorCode.GUEST_TRAP, `function '${fn}' trapped: ${trap}`, { function: fn, trap, pages, frames });
    }
    return new GuestError(ErrorCode.GUEST_TRAP, `function '${fn}' failed: ${message}`, { function: fn, trap: message, frames });
  }
}

const EMPTY = new Uint8Array(0);

function wasmFrames(err: unknown): string[] {
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  return stack
    .split('\n')
    .filter((line) => line.includes('wasm://'))
    .slice(0, 8)
    .map((line) => line.trim());
}

function instantiateError(fn: string, err: unknown, instance?: GuestInstance): NuvolaError {
  const cause = instance ? instance.classify(err) : undefined;
  const message = cause?.message ?? (err instanceof Error ? err.message : String(err));
  return new ModuleError(ErrorCode.INSTANTIATE_FAILED, `function '${fn}' could not be instantiated: ${message}`, {
    function: fn,
    cause: cause?.toWire(),
  });
}

/**
 * A guest memory of `pages`, capped at the module's maximum. V8 reserves address space for
 * every Wasm memory, about 16k per process on a 64-bit machine: when none is left, the
 * allocation throws a RangeError, reported as E_INSTANCE_LIMIT.
 */
function newMemory(spec: FunctionSpec, pages: number, env: InstanceEnv): WebAssembly.Memory {
  env.admit(spec.name);
  try {
    return new WebAssembly.Memory({ initial: pages, maximum: spec.layout.maximumPages });
  } catch (err) {
    env.onDispose();
    throw instanceLimitError(spec.name, `the engine could not allocate another Wasm memory (${(err as Error).message})`);
  }
}

export function instanceLimitError(fn: string, why: string): LimitError {
  return new LimitError(
    ErrorCode.INSTANCE_LIMIT,
    `function '${fn}' needs a new instance, but ${why}. Each live instance holds a Wasm memory and a process holds about 16k; ` +
      'lower maxIdleInstances or idleTimeoutMs so idle instances are released sooner, limit concurrent calls, or spread the load over more processes',
    { function: fn },
  );
}
