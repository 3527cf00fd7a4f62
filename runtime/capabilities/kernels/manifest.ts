/** Both threads. `nuvola:kernels`: GPU kernels on f32 arrays in guest memory. Every import suspends. */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { waits, type CapabilityManifest } from '../manifest.js';

export default {
  module: abi.MODULE_KERNELS,
  imports: {
    [abi.KERNELS_AVAILABLE]: waits('() -> (i32)'),
    [abi.KERNELS_MATMUL_F32]: waits('(i32, i32, i32, i32, i32, i32) -> ()'),
    [abi.KERNELS_SAXPY_F32]: waits('(f32, i32, i32, i32, i32) -> ()'),
    [abi.KERNELS_ADD_F32]: waits('(i32, i32, i32, i32) -> ()'),
    [abi.KERNELS_MUL_F32]: waits('(i32, i32, i32, i32) -> ()'),
    [abi.KERNELS_SUM_F32]: waits('(i32, i32) -> (f32)'),
    [abi.KERNELS_MAX_F32]: waits('(i32, i32) -> (f32)'),
    [abi.KERNELS_SCAN_F32]: waits('(i32, i32, i32) -> ()'),
    [abi.KERNELS_CONV2D_F32]: waits('(i32, i32, i32, i32, i32, i32, i32) -> ()'),
    [abi.KERNELS_RUN]: waits('(i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32) -> ()'),
  },
  guest: () => import('./guest.js'),
} satisfies CapabilityManifest;
