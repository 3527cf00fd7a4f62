/**
 * Main thread. Carries out the state operations workers ask for (messages of type `state`)
 * on the process's one {@link StateStore}.
 */
import type { Lease } from '../../../state/global-tier.js';
import type { Range } from '../../../state/key-state.js';
import { checkKey, type HeldLock, type StateStore } from '../../../state/store.js';
import type { StateOp } from '../../protocol.js';
import type { Kernels } from '../../../kernels/index.js';

export type StateService = (op: StateOp, args: unknown[]) => Promise<unknown>;

/** The kernel methods a guest may reach, by name. */
const KERNEL_METHODS = new Set([
  'available',
  'matmulF32',
  'saxpyF32',
  'addF32',
  'mulF32',
  'sumF32',
  'maxF32',
  'scanF32',
  'conv2dF32',
  'runKernel',
]);

/** `kernels` is asked for the process's kernels when a guest first uses them. */
export function stateService(store: StateStore, kernels: () => Kernels): StateService {
  return async (op, args) => {
    if (op === 'kernel') {
      const [method, caller, ...rest] = args as [string, string, ...unknown[]];
      if (!KERNEL_METHODS.has(method)) throw new Error(`unknown kernel method '${method}'`);
      const k = kernels();
      if (method === 'available') return k.available();
      if (method === 'runKernel') {
        const [name, call] = rest as Parameters<Kernels['runKernel']>;
        return k.runKernel(name, call, caller);
      }
      // The arrays are the worker's copies of the guest's: moved on, not copied again.
      return k.callOwned(caller, method, rest);
    }
    const key = args[0] as string;
    if (op !== 'unlockGlobal') checkKey(key);
    switch (op) {
      case 'lookup':
        return store.lookup(key, args[1] as string | undefined);
      case 'ensure':
        return store.ensure(key, args[1] as number, args[2] as HeldLock, args[3] as string | undefined);
      case 'pullRanges':
        return store.pullRanges(key, args[1] as Range[], args[2] as HeldLock);
      case 'pull':
        return store.pull(key, args[1] as HeldLock, args[2] as string | undefined);
      case 'push':
        return store.push(key, args[1] as boolean, args[2] as HeldLock, args[3] as Lease | undefined);
      case 'delete':
        return store.delete(key, args[1] as HeldLock);
      case 'append':
        return store.append(key, args[1] as Uint8Array, args[2] as string | undefined);
      case 'readAppended':
        return store.global.readAppended(key);
      case 'clearAppended':
        return store.clearAppended(key);
      case 'lockGlobal':
        return store.lockGlobal(key, args[1] as 'read' | 'write', args[2] as number);
      case 'unlockGlobal':
        return store.unlockGlobal(args[0] as Lease);
      case 'incrementGlobal':
        return store.global.increment(key, args[1] as bigint);
      case 'compareAndSwapGlobal':
        return store.global.compareAndSwap(key, args[1] as bigint, args[2] as bigint);
    }
  };
}
