/**
 * Which skeletons are registered as functions on which runtime, so the rewriting rules can
 * look inside a registered skeleton (is it stateful?) when another skeleton names it.
 */
import type { Runtime } from '../runtime/index.js';
import type { Skeleton } from './tree.js';

const registered = new WeakMap<Runtime, Map<string, Skeleton>>();

export function remember(rt: Runtime, name: string, node: Skeleton): void {
  let names = registered.get(rt);
  if (names === undefined) registered.set(rt, (names = new Map()));
  names.set(name, node);
}

/** The skeleton registered as `name` on `rt`, if that name is still a handler. */
export function registeredSkeleton(rt: Runtime, name: string): Skeleton | undefined {
  const node = registered.get(rt)?.get(name);
  if (node === undefined) return undefined;
  return rt.functions().includes(name) && rt.describe(name).kind === 'handler' ? node : undefined;
}
