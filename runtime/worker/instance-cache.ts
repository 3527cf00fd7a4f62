/**
 * Worker thread. The functions registered on this worker and their warm instances: idle
 * instances (the most recently used last), spare memories of retired instances, the live
 * instance count shared by every worker (maxInstances), prewarming and scale to zero.
 */
import { Control, wallClock, type FunctionSpec, type WorkerData } from '../protocol.js';
import { dropGlue } from './component.js';
import type { DirtyMap } from './dirty-map.js';
import { GuestInstance, type InstanceEnv } from './instance.js';
import { instanceLimitError } from './trap.js';

export interface FunctionEntry {
  spec: FunctionSpec;
  /** Warm instances, the most recently used last; each with when it went idle. */
  idle: { instance: GuestInstance; since: number }[];
  env: InstanceEnv;
  /** Idle instances a `prewarm` asked for. */
  prewarm: number;
  /** Memories of retired instances, reset to the snapshot, for the next restores. */
  spare: { memory: WebAssembly.Memory; since: number }[];
  /** The function's calls running now, in the whole runtime (FunctionSpec.concurrency). */
  running: Int32Array;
}

export class InstanceCache {
  readonly functions = new Map<string, FunctionEntry>();
  /** Live instances in the whole runtime (every worker counts into it). */
  private readonly memoryCounts: Int32Array;
  /** Spare memories on this worker. */
  private sparesHere = 0;
  /** When idle instances are next checked for expiry ({@link wallClock}). */
  private nextExpiry = 0;

  constructor(
    private readonly data: WorkerData,
    private readonly control: Int32Array,
    private readonly dirty: DirtyMap,
  ) {
    this.memoryCounts = new Int32Array(data.memoryCounts);
  }

  get(fn: string): FunctionEntry | undefined {
    return this.functions.get(fn);
  }

  /** Adds `spec`, replacing a function of the same name; `env` makes its instance environment. */
  add(spec: FunctionSpec, env: () => InstanceEnv): FunctionEntry {
    if (this.functions.has(spec.name)) this.unregister(spec.name);
    const entry: FunctionEntry = {
      spec,
      idle: [],
      env: env(),
      prewarm: 0,
      spare: [],
      running: new Int32Array(spec.concurrency.running),
    };
    this.functions.set(spec.name, entry);
    return entry;
  }

  unregister(name: string): void {
    const entry = this.functions.get(name);
    if (entry === undefined) return;
    this.functions.delete(name);
    for (const { instance } of entry.idle) instance.dispose();
    entry.idle.length = 0;
    const spares = entry.spare.splice(0).length;
    for (let i = 0; i < spares; i++) this.dropSpare(entry);
    const { globalsArea } = entry.env.restored!;
    this.dirty.release(globalsArea, Math.max(8, 8 * entry.spec.layout.globalTypes.length));
    const hash = entry.spec.component?.hash;
    if (hash !== undefined && ![...this.functions.values()].some((f) => f.spec.component?.hash === hash)) dropGlue(hash);
  }

  /**
   * Takes a slot under the function's maxConcurrency for a chained call run here; when none is
   * free the call goes through the pool, which queues it. The pool gives the slot back.
   */
  takeSlot(entry: FunctionEntry): boolean {
    const { limit } = entry.spec.concurrency;
    for (;;) {
      const running = Atomics.load(entry.running, 0);
      if (running >= limit) return false;
      if (Atomics.compareExchange(entry.running, 0, running, running + 1) === running) return true;
    }
  }

  /**
   * Counts a new instance in, or throws E_INSTANCE_LIMIT. At the limit, this worker's idle
   * instances (of any function) are released first to make room.
   */
  admit(fn: string): void {
    const { memoryCounts, data } = this;
    for (let attempt = 0; ; attempt++) {
      Atomics.add(memoryCounts, data.lockHolder, 1);
      // Plain reads: the sum only needs to be about right (two workers at the limit at once
      // may both back off).
      let total = 0;
      for (let i = 0; i < memoryCounts.length; i++) total += memoryCounts[i]!;
      if (total <= data.maxInstances) break;
      Atomics.sub(memoryCounts, data.lockHolder, 1);
      if (attempt > 0 || this.releaseIdle(() => true) === 0) {
        throw instanceLimitError(fn, `the runtime already holds maxInstances=${data.maxInstances} live instances`);
      }
    }
  }

  /** Counts an admitted instance out (InstanceEnv.onDispose). */
  countOut(): void {
    Atomics.sub(this.memoryCounts, this.data.lockHolder, 1);
  }

  /** Drops spare memories and disposes idle instances for which `expired(since)` holds; returns how many. */
  private releaseIdle(expired: (since: number) => boolean): number {
    let released = 0;
    for (const entry of this.functions.values()) {
      // Oldest first: both lists are in the order things went idle.
      let n = 0;
      while (n < entry.spare.length && expired(entry.spare[n]!.since)) n++;
      entry.spare.splice(0, n);
      for (let i = 0; i < n; i++) this.dropSpare(entry);
      released += n;
      n = 0;
      while (n < entry.idle.length && expired(entry.idle[n]!.since)) n++;
      for (const { instance } of entry.idle.splice(0, n)) instance.dispose();
      released += n;
    }
    return released;
  }

  /** Accounts for a spare memory of `entry` let go (the garbage collector frees it). */
  private dropSpare(entry: FunctionEntry): void {
    Atomics.store(this.control, Control.SPARES, --this.sparesHere);
    entry.env.onDispose();
  }

  /** Scale to zero: releases instances idle for longer than idleTimeoutMs. */
  expireIdle(): void {
    const now = wallClock();
    if (now < this.nextExpiry) return;
    this.nextExpiry = now + Math.min(1000, this.data.idleTimeoutMs / 4);
    const cutoff = now - this.data.idleTimeoutMs;
    this.releaseIdle((since) => since <= cutoff);
  }

  /** A warm instance of `entry` if one is idle (the most recently used). */
  takeIdle(entry: FunctionEntry): GuestInstance | undefined {
    return entry.idle.pop()?.instance;
  }

  /** A new instance of `entry`, restored into a spare memory when there is one. */
  newInstance(entry: FunctionEntry): GuestInstance {
    const spare = entry.spare.pop();
    if (spare !== undefined) Atomics.store(this.control, Control.SPARES, --this.sparesHere);
    return GuestInstance.restore(entry.spec, entry.env, spare?.memory);
  }

  /** Keeps a fresh instance of `entry` idle, if it is still registered and there is room. */
  release(entry: FunctionEntry, instance: GuestInstance): void {
    if (this.functions.get(entry.spec.name) === entry && entry.idle.length < this.data.maxIdleInstances) {
      entry.idle.push({ instance, since: wallClock() });
    } else {
      instance.dispose();
    }
  }

  /**
   * Where an instance goes after a call: back to the idle instances (reset to the snapshot,
   * unless the function keeps state, and even after a failed call: a reset undoes whatever it
   * did); else its memory, reset, to the spare memories; else away. An instance of a function
   * unregistered meanwhile is not reset: it is not used again.
   */
  retire(entry: FunctionEntry, instance: GuestInstance, ok: boolean, reusable = true): void {
    if (!ok) instance.failed();
    if (!reusable) return void instance.dispose();
    const now = wallClock();
    if (this.functions.get(entry.spec.name) === entry) {
      const roomIdle = entry.idle.length < this.data.maxIdleInstances;
      if (entry.spec.reuse === 'keep') {
        if (ok && roomIdle) return void entry.idle.push({ instance, since: now });
      } else {
        if (roomIdle && !instance.ctx.cancelled && instance.reset()) return void entry.idle.push({ instance, since: now });
        if (entry.spare.length < this.data.memoryPoolSize) {
          const memory = instance.recycle();
          if (memory !== undefined) {
            entry.spare.push({ memory, since: now });
            Atomics.store(this.control, Control.SPARES, ++this.sparesHere);
            return;
          }
        }
      }
    }
    instance.dispose();
  }

  /** Asks for `count` idle instances of `fn`, restored by {@link prewarmOne} while the worker idles. */
  prewarm(fn: string, count: number): void {
    const entry = this.functions.get(fn);
    if (entry) entry.prewarm = Math.max(entry.prewarm, count);
  }

  /** Restores one instance for a pending `prewarm`; returns false when none is pending. */
  prewarmOne(log: (fn: string, message: string) => void): boolean {
    for (const entry of this.functions.values()) {
      if (entry.idle.length >= Math.min(entry.prewarm, this.data.maxIdleInstances)) {
        entry.prewarm = 0;
        continue;
      }
      try {
        this.release(entry, this.newInstance(entry));
      } catch (err) {
        entry.prewarm = 0;
        log(entry.spec.name, `nuvola: prewarming failed: ${(err as Error).message}`);
      }
      return true;
    }
    return false;
  }
}
