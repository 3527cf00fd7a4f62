/**
 * Worker thread. One Instance of a guest function: its memory, its host-import context, and
 * how to run its entry point. Instances whose module can suspend run `main` through
 * `WebAssembly.promising`; the others are called directly, which is cheaper and lets the
 * instance go back to the warm pool the moment `main` returns.
 *
 * Why it is this long: boot, restore, call, capture, reset and recycle of one Instance use the
 * same private state (memory, dirty-map slice, exports, the component's glue); the errors it
 * ends with are classified in trap.ts.
 */
import * as abi from '../../guest/sdk/nuvola/abi.js';
import { ErrorCode, GuestError, LimitError, ModuleError, NuvolaError, TimeoutError } from '../errors.js';
import type { CallEnd } from '../capabilities/capability.js';
import { logLine, newMeter, type ContextRef, type GuestContext, type RegionSlots } from '../capabilities/context.js';
import { buildImports, busy, capabilitiesOf, endCall, newSlots, type SuspendHooks } from '../capabilities/guest.js';
import type { CapabilityDeps } from '../capabilities/capability.js';

export type { SuspendHooks };
import { WasiExit } from '../capabilities/wasi/exit.js';
import { WASI_START } from '../capabilities/wasi/manifest.js';
import type { FunctionSpec, GroupRef } from '../protocol.js';
import { BLOCK_BYTES } from '../snapshot/code.js';
import {
  EXPORT_ARM,
  EXPORT_FUEL,
  EXPORT_LOAD,
  EXPORT_SAVE,
  EXPORT_START_SECTION,
  IMPORT_DIRTY,
  IMPORT_INTERRUPT,
  IMPORT_MEMORY,
  IMPORT_REGION,
  REGION_SLOT_BYTES,
  regionTableOffset,
  SNAPSHOT_MODULE,
  type DataSegment,
  type Snapshot,
} from '../snapshot/layout.js';
import type { DirtyMap } from './dirty-map.js';
import { interrupted, type Interrupt } from './interrupt.js';
import { startSlice } from './meter.js';
import { componentErrorMessage, instantiateComponent, type ComponentApi } from './component.js';
import { classifyTrap, instanceLimitError, instantiateError } from './trap.js';
import { LocalImage } from './image.js';

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
  /** The worker's host imports (bound once, see ContextRef) and the ref they read. */
  host: WorkerImports;
  /** Called before an instance is created; throws E_INSTANCE_LIMIT when the process is full. */
  admit: (fn: string) => void;
  /** Called once for every admitted instance when it is disposed or failed to come up. */
  onDispose: () => void;
  /** The worker's interrupt word, which the pool sets to stop a call looping past its deadline. */
  interrupt: Interrupt;
  /** The host's region memory (nuvola:region), imported by modules that map state keys. */
  region?: WebAssembly.Memory;
  /**
   * The function's snapshot on this worker: its image, and the slots in the dirty-map memory
   * that hold its globals. Set once the snapshot exists (not for the boot instance).
   */
  restored?: { image: LocalImage; globalsArea: number };
}

export interface WorkerImports {
  ref: ContextRef;
  /** Grows as the worker loads capabilities (see {@link addLoadedImports}). */
  imports: WebAssembly.Imports;
  hooks: SuspendHooks;
  /** What the worker gives its capabilities (runtime/worker/wiring.ts). */
  deps: CapabilityDeps;
}

/**
 * The host imports of a worker: one import object for the instances of every module that
 * cannot suspend. Such an instance runs from `call` to its return without another instance
 * running in between, so `ref.ctx`, set at `call`, is the caller. An instance of a module
 * that can suspend gets imports of its own instead: several suspended instances may resume in
 * one turn of the event loop (a batch of state replies), in an order no hook observes.
 */
export function workerImports(hooks: SuspendHooks, deps: CapabilityDeps): WorkerImports {
  const ref = { ctx: undefined } as unknown as ContextRef;
  return { ref, imports: buildImports(ref, hooks, deps), hooks, deps };
}

/** Adds the imports of the capabilities loaded since `host` was built (capabilities/guest.ts loads them as modules need them). */
export function addLoadedImports(host: WorkerImports): void {
  buildImports(host.ref, host.hooks, host.deps, host.imports);
}

/** Sets up what instances of a snapshotted function share on a worker (see InstanceEnv.restored). */
export function restoredState(spec: FunctionSpec, dirty: DirtyMap): NonNullable<InstanceEnv['restored']> {
  const snapshot = spec.snapshot!;
  const globalsArea = dirty.allocate(Math.max(8, 8 * spec.layout.globalTypes.length));
  dirty.writeGlobals(globalsArea, spec.layout.globalTypes, snapshot.globals);
  return { image: new LocalImage(snapshot), globalsArea };
}

const PAGE = 65536;

export class GuestInstance {
  readonly ctx: GuestContext;
  readonly spec: FunctionSpec;
  private readonly env: InstanceEnv;
  private readonly memory: WebAssembly.Memory;
  private readonly entry: () => number | Promise<number>;
  private exports: WebAssembly.Exports;
  /** `__nuvola_load(area, base)` and `__nuvola_save(area)` (see snapshot/layout.ts). */
  private load: (area: number, base: number) => void;
  private save: (area: number) => void;
  /** Names the call the instance runs, for the interruption checks (`__nuvola_arm`). */
  private arm: (id: number) => void;
  private readonly dirtyBase: number;
  /** The import object and the ref its imports read: the worker's, or the instance's own. */
  private readonly host: WorkerImports;
  private readonly dirtyBlocks: number;
  private disposed = false;
  /** Whether a call is running (rather than start-up code), for the wording of errors. */
  private calling = false;
  /** With a `fuel` budget: the global the rewritten code counts down (`__nuvola_fuel`). */
  private fuel: WebAssembly.Global | undefined;

  /**
   * The one instance of a registration that runs start-up code: the module's data segments,
   * its start function, AssemblyScript's `_initialize` and the guest's `init()`. Its state is
   * then {@link capture}d as the function's snapshot.
   */
  static boot(spec: FunctionSpec, segments: DataSegment[], env: InstanceEnv, id = 0): GuestInstance {
    const { layout } = spec;
    const area = env.dirty.allocate(Math.max(8, 8 * layout.globalTypes.length));
    let instance: GuestInstance | undefined;
    try {
      // Start-up runs as soon as the core module is instantiated: a component's glue may
      // call into it before the constructor returns.
      instance = new GuestInstance(spec, newMemory(spec, layout.initialPages, env), env, (self) => self.startUp(segments, area, id));
      if (spec.abi !== 'component') {
        const exports = instance.exports;
        if (typeof exports[abi.EXPORT_START] === 'function') (exports[abi.EXPORT_START] as () => void)();
        if (typeof exports[abi.EXPORT_INIT] === 'function') (exports[abi.EXPORT_INIT] as () => void)();
        // A full collection now leaves the snapshot compact and the collector idle: otherwise
        // every call restored from it would resume the same incremental cycle, marking (writing)
        // the whole heap, and its reset would restore all of it.
        // (Not in a WASI command built with AssemblyScript: its runtime starts in `_start`.)
        if (spec.abi === 'nuvola' && typeof exports[abi.EXPORT_COLLECT] === 'function') (exports[abi.EXPORT_COLLECT] as () => void)();
      }
      // What start-up code holds is released: files `init` opened are closed (a snapshot
      // cannot hold host files) and what it wrote to stderr is logged.
      endCall(instance.ctx, 'failed');
    } catch (err) {
      const error =
        id !== 0 && interrupted(env.interrupt, id)
          ? new TimeoutError(
              ErrorCode.TIMEOUT,
              `function '${spec.name}': its start-up code or init() ran past timeoutMs and was interrupted; its worker goes on`,
              {
                function: spec.name,
                interrupted: true,
              },
            )
          : err instanceof NuvolaError && !(err instanceof GuestError)
            ? err
            : instantiateError(spec.name, err, instance);
      if (instance !== undefined) endCall(instance.ctx, 'failed');
      instance?.dispose();
      throw error;
    } finally {
      env.dirty.release(area, Math.max(8, 8 * layout.globalTypes.length));
    }
    return instance;
  }

  /**
   * The boot instance's first steps: its data segments and the module's start function. `id`
   * arms the interruption checks for all of start-up (see startUpId in snapshot/layout.ts).
   */
  private startUp(segments: DataSegment[], area: number, id: number): void {
    this.host.ref.ctx = this.ctx;
    this.arm(id);
    // Point the write tracking at this instance's slice, keeping the globals' initial values.
    this.save(area);
    this.load(area, this.dirtyBase);
    const target = new Uint8Array(this.memory.buffer);
    for (const segment of segments) {
      if (segment.offset + segment.bytes.byteLength > target.byteLength) {
        throw new ModuleError(
          ErrorCode.INSTANTIATE_FAILED,
          `function '${this.spec.name}' could not be instantiated: a data segment (offset ${segment.offset}, ${segment.bytes.byteLength} bytes) lies outside its initial memory of ${target.byteLength} bytes`,
          { function: this.spec.name },
        );
      }
      target.set(segment.bytes, segment.offset);
    }
    if (this.spec.layout.hasStart) (this.exports[EXPORT_START_SECTION] as () => void)();
  }

  /**
   * A new instance in the state of `spec.snapshot`, without running any guest code. `spare`:
   * a memory already in the snapshot's state (from {@link recycle}), to use instead of
   * allocating and filling a new one.
   */
  static restore(spec: FunctionSpec, env: InstanceEnv, spare?: WebAssembly.Memory): GuestInstance {
    const restored = env.restored!;
    let memory = spare;
    if (memory === undefined) {
      memory = newMemory(spec, spec.snapshot!.pages, env);
      restored.image.fill(new Uint8Array(memory.buffer));
    }
    return new GuestInstance(spec, memory, env, (self) => self.load(restored.globalsArea, self.dirtyBase));
  }

  /** `prepare` runs once the module that owns the memory is instantiated, before any other code of it. */
  private constructor(spec: FunctionSpec, memory: WebAssembly.Memory, env: InstanceEnv, prepare: (self: GuestInstance) => void) {
    this.spec = spec;
    this.env = env;
    this.memory = memory;
    // A module with regions keeps its slot table at the end of its dirty-map slice.
    this.dirtyBlocks = regionTableOffset(spec.layout.maximumPages) + (spec.layout.regions ? abi.REGION_SLOTS * REGION_SLOT_BYTES : 0);
    if (spec.layout.regions && env.region === undefined) {
      env.onDispose();
      throw new Error(`nuvola: function '${spec.name}' maps regions, but its worker has no region memory`);
    }
    let slots: unknown[];
    try {
      slots = newSlots(spec, env.host.deps);
    } catch (err) {
      // A capability the module imports did not load (see wiring.ts).
      env.onDispose();
      throw err;
    }
    let dirtyBase: number;
    try {
      dirtyBase = env.dirty.allocate(this.dirtyBlocks);
    } catch (err) {
      env.onDispose();
      throw instanceLimitError(spec.name, `its worker's dirty map is full (${(err as Error).message})`);
    }
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
      callees: spec.callees,
      deadline: 0,
      group: undefined,
      slots,
      capabilities: capabilitiesOf(spec.module),
      // A cancelled call's host request may still write after the slice was given back.
      written: (ptr, length) => {
        if (!this.disposed) env.dirty.mark(dirtyBase, ptr, length);
      },
      sources: spec.sources,
      meter: newMeter(),
      regionSlots: spec.layout.regions ? regionSlots(env, dirtyBase + regionTableOffset(spec.layout.maximumPages)) : undefined,
    };
    if (spec.suspends) {
      const own: ContextRef = { ctx: this.ctx };
      this.host = { ...env.host, ref: own, imports: buildImports(own, env.host.hooks, env.host.deps) };
    } else {
      this.host = env.host;
    }
    const snapshotImports: Record<string, WebAssembly.Memory> = {
      [IMPORT_MEMORY]: memory,
      [IMPORT_DIRTY]: env.dirty.memory,
      [IMPORT_INTERRUPT]: env.interrupt.memory,
    };
    if (env.region !== undefined && spec.layout.regions) snapshotImports[IMPORT_REGION] = env.region;
    // Set by instantiateMain, which always runs before the constructor returns.
    this.exports = {};
    this.load = this.save = this.arm = () => {};
    const instantiateMain = (module: WebAssembly.Module, imports: WebAssembly.Imports): WebAssembly.Instance => {
      const instance = new WebAssembly.Instance(module, { ...imports, [SNAPSHOT_MODULE]: snapshotImports });
      this.exports = instance.exports;
      this.load = this.exports[EXPORT_LOAD] as (area: number, base: number) => void;
      this.save = this.exports[EXPORT_SAVE] as (area: number) => void;
      this.arm = this.exports[EXPORT_ARM] as (id: number) => void;
      if (spec.fuel !== undefined) this.fuel = this.exports[EXPORT_FUEL] as WebAssembly.Global;
      prepare(this);
      return instance;
    };
    try {
      if (spec.abi === 'component') {
        const api = instantiateComponent(
          spec.component!,
          spec.module,
          { log: (message) => this.logComponent(message) },
          instantiateMain,
          (ptr, length) => this.glueWrote(ptr, length),
        );
        this.entry = () => this.runComponent(api);
      } else {
        instantiateMain(spec.module, this.host.imports);
        this.entry = spec.abi === 'wasi' ? wasiEntry(this.exports, spec.suspends) : mainEntry(this.exports, spec.suspends);
      }
    } catch (err) {
      // Start-up code runs in here (a data segment out of range, a trap or proc_exit in the
      // start function): whatever failed, the slice and the instance count are given back.
      const error = err instanceof NuvolaError && !(err instanceof GuestError) ? err : instantiateError(spec.name, err, this);
      endCall(this.ctx, 'failed');
      this.disposed = true;
      env.dirty.release(dirtyBase, this.dirtyBlocks);
      env.onDispose();
      throw error;
    }
  }

  /** One call of a component's `run`: its `ok` list is the output (code 0), its `err` string the output of code 1. */
  private runComponent(api: ComponentApi): number {
    const ctx = this.ctx;
    let output: Uint8Array;
    try {
      output = api.run(ctx.input);
    } catch (err) {
      const message = componentErrorMessage(err);
      if (message === undefined) throw err;
      ctx.output = encoder.encode(message);
      return 1;
    }
    if (output.byteLength > ctx.maxOutputBytes) {
      throw new LimitError(
        ErrorCode.OUTPUT_TOO_LARGE,
        `function '${ctx.fn}' returned ${output.byteLength} bytes of output, above maxOutputBytes=${ctx.maxOutputBytes}; raise it in createRuntime()`,
        { function: ctx.fn, bytes: output.byteLength, maxOutputBytes: ctx.maxOutputBytes },
      );
    }
    ctx.output = output;
    return 0;
  }

  /**
   * A range of guest memory the component's glue is about to write (its `realloc` returned
   * it): marked so the reset restores it. Clamped to the memory: a range past its end is never
   * written (the glue's write fails), and the marks must stay inside this instance's slice.
   */
  private glueWrote(ptr: number, length: number): void {
    const end = Math.min(ptr + length, this.memory.buffer.byteLength);
    if (end > ptr) this.ctx.written(ptr, end - ptr);
  }

  /** A component's `log` import: one line per call, within the call's log budget. */
  private logComponent(message: string): void {
    logLine(this.ctx, message);
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
    const types = this.spec.layout.globalTypes;
    const area = this.env.dirty.allocate(Math.max(8, 8 * types.length));
    this.save(area);
    const globals = this.env.dirty.readGlobals(area, types);
    this.env.dirty.release(area, Math.max(8, 8 * types.length));
    return { image, pages: bytes / PAGE, globals, ranges };
  }

  /**
   * Returns the instance to its function's snapshot after a call: the memory blocks the call
   * wrote and every mutable global. Returns false when that cannot be done in place (the call
   * grew the memory, or the module's writes are not tracked); the instance must then be disposed.
   */
  reset(): boolean {
    const restored = this.env.restored!;
    const bytes = restored.image.bytes;
    if (!this.spec.layout.tracked || this.memory.buffer.byteLength !== bytes) return false;
    this.env.dirty.restore(this.dirtyBase, new Uint8Array(this.memory.buffer), restored.image, bytes);
    this.load(restored.globalsArea, this.dirtyBase);
    return true;
  }

  /**
   * Retires the instance but keeps its memory, reset to the snapshot, for a later restore
   * (which then allocates and first-touches no memory: on this VM a page's first touch costs
   * about 3 µs). Returns undefined, and does nothing, when the memory cannot be reset in place
   * or host calls of the instance may still write into it (a cancelled call).
   */
  recycle(): WebAssembly.Memory | undefined {
    const restored = this.env.restored!;
    const bytes = restored.image.bytes;
    if (this.disposed || !this.spec.layout.tracked || this.memory.buffer.byteLength !== bytes) return undefined;
    if (this.ctx.cancelled || busy(this.ctx)) return undefined;
    this.env.dirty.restore(this.dirtyBase, new Uint8Array(this.memory.buffer), restored.image, bytes);
    this.disposed = true;
    this.env.dirty.release(this.dirtyBase, this.dirtyBlocks);
    return this.memory;
  }

  /** Gives back the instance's slice of the dirty map; the instance is not used again. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.env.dirty.release(this.dirtyBase, this.dirtyBlocks);
    this.env.onDispose();
  }

  /** Runs `main` once; returns its code, or a promise of it when the module can suspend. */
  call(input: Uint8Array, invocationId: number, deadline: number, group?: GroupRef): number | Promise<number> {
    this.ctx.group = group;
    this.ctx.deadline = deadline;
    this.ctx.input = input;
    this.ctx.output = undefined;
    this.ctx.invocationId = invocationId;
    this.ctx.logBudget = this.env.limits.maxLogBytes;
    this.host.ref.ctx = this.ctx;
    this.calling = true;
    this.ctx.meter = newMeter();
    this.arm(invocationId);
    if (this.fuel !== undefined) this.fuel.value = BigInt(this.spec.fuel!);
    startSlice(this.ctx.meter, invocationId, this.env.interrupt);
    return this.entry();
  }

  /** With a `fuel` budget: the fuel the current (or last) call consumed; after exhaustion, the whole budget. */
  fuelUsed(): number | undefined {
    if (this.fuel === undefined) return undefined;
    const left = Number(this.fuel.value as bigint);
    return Math.min(this.spec.fuel!, this.spec.fuel! - left);
  }

  /** Releases what a failed invocation held (the instance may still be reset and reused). */
  failed(how: CallEnd = 'failed'): void {
    this.calling = false;
    endCall(this.ctx, how);
    this.ctx.output = undefined;
    this.ctx.group = undefined;
  }

  /** Releases what a failed invocation held; the instance is not used again. */
  discard(how: CallEnd = 'failed'): void {
    this.failed(how);
    this.dispose();
  }

  /** Stops a suspended invocation for good: waiting host calls return, and the guest traps before it could run again. */
  cancel(): void {
    this.discard('cancelled');
    this.ctx.cancelled = true;
    for (const wake of [...this.ctx.cancelWaiters]) wake();
  }

  /** Takes the output of the finished call and clears the per-call context. */
  finish(): Uint8Array {
    this.calling = false;
    endCall(this.ctx, 'returned');
    const output = this.ctx.output ?? new Uint8Array(0);
    this.ctx.input = EMPTY;
    this.ctx.output = undefined;
    this.ctx.invocationId = 0;
    this.ctx.group = undefined;
    return output;
  }

  /** Turns anything the guest threw into a coded error, recognising a hit memory limit. */
  classify(err: unknown): NuvolaError {
    return classifyTrap(err, { spec: this.spec, interrupt: this.env.interrupt, ctx: this.ctx, fuel: this.fuel, calling: this.calling });
  }
}

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

/** An SDK guest's `main`: its i32 is the return code. */
function mainEntry(exports: WebAssembly.Exports, suspends: boolean): () => number | Promise<number> {
  const main = exports[abi.EXPORT_MAIN] as () => number;
  return suspends ? WebAssembly.promising(main) : main;
}

/** A WASI command's `_start`: 0 when it returns, the code of `proc_exit` when it exits. */
function wasiEntry(exports: WebAssembly.Exports, suspends: boolean): () => number | Promise<number> {
  const exited = (err: unknown): number => {
    if (err instanceof WasiExit) return err.code;
    throw err;
  };
  const start = exports[WASI_START] as () => void;
  if (suspends) {
    const started = WebAssembly.promising(start);
    return () => started().then(() => 0, exited);
  }
  return () => {
    try {
      start();
      return 0;
    } catch (err) {
      return exited(err);
    }
  };
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

/** The slot table at `table` in the worker's dirty-map memory (see REGION_SLOT_BYTES). */
function regionSlots(env: InstanceEnv, table: number): RegionSlots {
  // The dirty map grows (a new buffer): take a view at each write.
  const words = (): Int32Array => new Int32Array(env.dirty.memory.buffer, table, (abi.REGION_SLOTS * REGION_SLOT_BYTES) / 4);
  return {
    set(slot, base, sizeAddr) {
      const w = words();
      w[slot * 2] = base;
      w[slot * 2 + 1] = sizeAddr;
    },
    clear: () => words().fill(0),
  };
}
