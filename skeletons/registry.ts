/**
 * Which skeletons are registered as functions on which runtime, so the rewriting rules can
 * look inside a registered skeleton (is it stateful?) when another skeleton names it.
 */
import type { HostHandler, Runtime } from '../runtime/index.js';
import type { Skeleton } from './tree.js';

const registered = new WeakMap<Runtime, Map<string, { node: Skeleton; handler: HostHandler }>>();

export function remember(rt: Runtime, name: string, node: Skeleton, handler: HostHandler): void {
  let names = registered.get(rt);
  if (names === undefined) registered.set(rt, (names = new Map()));
  names.set(name, { node, handler });
}

/** The skeleton registered as `name` on `rt`, if `name` is still that registration (not since replaced). */
export function registeredSkeleton(rt: Runtime, name: string): Skeleton | undefined {
  const entry = registered.get(rt)?.get(name);
  if (entry === undefined) return undefined;
  if (rt.functions().includes(name) && rt.describe(name).handler === entry.handler) return entry.node;
  registered.get(rt)?.delete(name);
  return undefined;
}
