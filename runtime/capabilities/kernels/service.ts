/**
 * Main thread. Carries out the kernel calls workers send (KernelsApi) on the process's
 * kernels (kernels/), created when a guest first uses them.
 */
import type { Kernels } from '../../../kernels/index.js';
import type { Service } from '../../rpc.js';
import type { KernelsApi } from './api.js';

export function kernelsService(kernels: () => Kernels): Service<KernelsApi> {
  // The arrays are the worker's copies of the guest's: moved on, not copied again.
  const owned =
    (method: string) =>
    (caller: string, ...args: unknown[]): Promise<never> =>
      kernels().callOwned(caller, method, args) as Promise<never>;
  return {
    connect: () => kernels().connect(),
    available: () => kernels().available(),
    matmulF32: owned('matmulF32'),
    saxpyF32: owned('saxpyF32'),
    addF32: owned('addF32'),
    mulF32: owned('mulF32'),
    sumF32: owned('sumF32'),
    maxF32: owned('maxF32'),
    scanF32: owned('scanF32'),
    conv2dF32: owned('conv2dF32'),
    runKernel: (caller, name, call) => kernels().runKernel(name, call, caller),
  };
}
