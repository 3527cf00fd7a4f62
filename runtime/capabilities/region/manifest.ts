/**
 * Both threads. `nuvola:region`: state keys mapped into the guest. `map` and `grow` are host
 * calls that may suspend (the store on the main thread places the key in the region memory);
 * the accessors never reach the host: the rewrite (runtime/snapshot/code.ts) replaces each call
 * of one with a bounds-checked access to the region memory.
 */
import * as abi from '../../../guest/sdk/nuvola/abi.js';
import { fn, waits, type CapabilityManifest } from '../manifest.js';

export default {
  module: abi.MODULE_REGION,
  imports: {
    [abi.REGION_MAP]: waits('(i32, i32, i32) -> (i32)'),
    [abi.REGION_GROW]: waits('(i32, i32) -> ()'),
    [abi.REGION_SIZE]: fn('(i32) -> (i32)'),
    [abi.REGION_GET_F64]: fn('(i32, i32) -> (f64)'),
    [abi.REGION_SET_F64]: fn('(i32, i32, f64) -> ()'),
    [abi.REGION_GET_F32]: fn('(i32, i32) -> (f32)'),
    [abi.REGION_SET_F32]: fn('(i32, i32, f32) -> ()'),
    [abi.REGION_GET_I32]: fn('(i32, i32) -> (i32)'),
    [abi.REGION_SET_I32]: fn('(i32, i32, i32) -> ()'),
    [abi.REGION_GET_U8]: fn('(i32, i32) -> (i32)'),
    [abi.REGION_SET_U8]: fn('(i32, i32, i32) -> ()'),
    [abi.REGION_READ_INTO]: fn('(i32, i32, i32, i32) -> ()'),
    [abi.REGION_WRITE_FROM]: fn('(i32, i32, i32, i32) -> ()'),
    [abi.REGION_ATOMIC_ADD_I32]: fn('(i32, i32, i32) -> (i32)'),
    [abi.REGION_COMPARE_EXCHANGE_I32]: fn('(i32, i32, i32, i32) -> (i32)'),
  },
  guest: () => import('./guest.js'),
} satisfies CapabilityManifest;
