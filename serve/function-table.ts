/**
 * Main thread. The names a server publishes and the registered function each stands for now.
 * A function uploaded again with `?replace=true` (and every rebuild of `nuvola dev`) is
 * registered beside the old one as `<name>:v<N>`; new calls go to it at once, calls in flight
 * finish on the old version, which is unregistered when the last of them is answered. So a
 * replace never drops or fails a call.
 */
import type { Runtime } from '../runtime/index.js';

interface Version {
  /** The name it is registered under in the runtime. */
  registered: string;
  /** Calls sent to it and not answered. */
  inflight: number;
  /** Replaced or deleted: unregister when `inflight` reaches 0. */
  retired: boolean;
}

export class FunctionTable {
  private readonly current = new Map<string, Version>();
  private readonly counts = new Map<string, number>();

  constructor(private readonly rt: Runtime) {}

  /** The name the runtime knows `name` by now (a function registered by the embedding service: itself). */
  resolve(name: string): string {
    return this.current.get(name)?.registered ?? name;
  }

  /** The published name of a registered one. */
  published(registered: string): string {
    for (const [name, v] of this.current) if (v.registered === registered) return name;
    return registered;
  }

  /** Published names: those uploaded here and the runtime's others (old versions left out). */
  names(): string[] {
    const versions = new Set([...this.current.values()].map((v) => v.registered));
    const own = this.rt.functions().filter((n) => !versions.has(n) && !/:v\d+$/.test(n));
    return [...new Set([...this.current.keys(), ...own])].sort();
  }

  /** Whether a name was uploaded through this table. */
  has(name: string): boolean {
    return this.current.has(name);
  }

  /** The name the next version of `name` registers under (`name` itself the first time). */
  nextName(name: string): string {
    const n = (this.counts.get(name) ?? 0) + 1;
    return n === 1 && !this.current.has(name) ? name : `${name}:v${n}`;
  }

  /** `registered` is registered: it becomes `name`'s version; the one before retires. */
  install(name: string, registered: string): void {
    const n = (this.counts.get(name) ?? 0) + 1;
    this.counts.set(name, n);
    const old = this.current.get(name);
    this.current.set(name, { registered, inflight: 0, retired: false });
    if (old !== undefined) this.retire(old);
  }

  /** Removes `name`; calls in flight finish first. False when it was not uploaded here. */
  remove(name: string): boolean {
    const v = this.current.get(name);
    if (v === undefined) return false;
    this.current.delete(name);
    this.retire(v);
    return true;
  }

  /** Runs `call` against `name`'s current version, counted in flight. */
  async run<T>(name: string, call: (registered: string) => Promise<T>): Promise<T> {
    const v = this.current.get(name);
    if (v === undefined) return call(name);
    v.inflight++;
    try {
      return await call(v.registered);
    } finally {
      v.inflight--;
      if (v.retired && v.inflight === 0) this.unregister(v);
    }
  }

  private retire(v: Version): void {
    v.retired = true;
    if (v.inflight === 0) this.unregister(v);
  }

  private unregister(v: Version): void {
    try {
      this.rt.unregister(v.registered);
    } catch {
      // Already gone (the runtime closed, or the embedding service removed it).
    }
  }
}
